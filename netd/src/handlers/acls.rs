//! DescribeAcls (key 29), CreateAcls (key 30) and DeleteAcls (key 31), versions 1–3: answered as
//! Apache Kafka 4.4 answers them without `authorizer.class.name`. Skua has no authorizer, so
//! there are no ACLs to list, store or delete, and clients are told so rather than shown an
//! empty list (which would read as "nobody may do anything" or "everybody may").
//!
//! Observed on Kafka 4.4 (netd/tests/admin_oracle.rs): DescribeAcls → SECURITY_DISABLED, "No
//! Authorizer is configured on the broker", no resources; CreateAcls → one result per creation,
//! each SECURITY_DISABLED, "No Authorizer is configured."; DeleteAcls → one result per filter,
//! each SECURITY_DISABLED, "No Authorizer is configured.", nothing matched. A binding or filter
//! with an UNKNOWN (0) resource type, pattern type, operation or permission type fails Kafka's
//! request parser, which closes the connection; so does this handler.
//! Knows nothing of principals or resources beyond their enum codes.

use bytes::Bytes;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::codec::frame::{decode_body, encode_response, Frame};

/// Kafka's DescribeAcls message without an authorizer.
pub const DESCRIBE_MESSAGE: &str = "No Authorizer is configured on the broker";
/// Kafka's CreateAcls and DeleteAcls message without an authorizer.
pub const CHANGE_MESSAGE: &str = "No Authorizer is configured.";

/// The UNKNOWN code of Kafka's ACL enums (`ResourceType`, `PatternType`, `AclOperation`,
/// `AclPermissionType`): a request naming it is malformed.
const ACL_ENUM_UNKNOWN: i8 = 0;

/// Refuses (closing the connection) a binding or filter with an UNKNOWN element, as Kafka does.
fn refuse_unknown(api_key: ApiKey, codes: [i8; 4]) -> anyhow::Result<()> {
    if codes.contains(&ACL_ENUM_UNKNOWN) {
        anyhow::bail!(
            "{api_key:?} with an UNKNOWN element (resource type, pattern type, operation, permission: {codes:?})"
        );
    }
    Ok(())
}

pub fn describe(frame: &Frame) -> anyhow::Result<Bytes> {
    let request: DescribeAclsRequest = decode_body(frame)?;
    refuse_unknown(
        ApiKey::DescribeAcls,
        [request.resource_type_filter, request.pattern_type_filter, request.operation, request.permission_type],
    )?;
    let mut response = DescribeAclsResponse::default();
    response.error_code = ResponseError::SecurityDisabled.code();
    response.error_message = Some(str_bytes(DESCRIBE_MESSAGE));
    encode_response(ApiKey::DescribeAcls, frame.api_version, frame.correlation_id, &response)
}

pub fn create(frame: &Frame) -> anyhow::Result<Bytes> {
    let request: CreateAclsRequest = decode_body(frame)?;
    for creation in &request.creations {
        refuse_unknown(
            ApiKey::CreateAcls,
            [creation.resource_type, creation.resource_pattern_type, creation.operation, creation.permission_type],
        )?;
    }
    let mut response = CreateAclsResponse::default();
    response.results = request
        .creations
        .iter()
        .map(|_| {
            let mut result = AclCreationResult::default();
            result.error_code = ResponseError::SecurityDisabled.code();
            result.error_message = Some(str_bytes(CHANGE_MESSAGE));
            result
        })
        .collect();
    encode_response(ApiKey::CreateAcls, frame.api_version, frame.correlation_id, &response)
}

pub fn delete(frame: &Frame) -> anyhow::Result<Bytes> {
    let request: DeleteAclsRequest = decode_body(frame)?;
    for filter in &request.filters {
        refuse_unknown(
            ApiKey::DeleteAcls,
            [filter.resource_type_filter, filter.pattern_type_filter, filter.operation, filter.permission_type],
        )?;
    }
    let mut response = DeleteAclsResponse::default();
    response.filter_results = request
        .filters
        .iter()
        .map(|_| {
            let mut result = DeleteAclsFilterResult::default();
            result.error_code = ResponseError::SecurityDisabled.code();
            result.error_message = Some(str_bytes(CHANGE_MESSAGE));
            result
        })
        .collect();
    encode_response(ApiKey::DeleteAcls, frame.api_version, frame.correlation_id, &response)
}
