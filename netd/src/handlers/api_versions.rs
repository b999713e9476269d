//! ApiVersions (key 18), versions 0–4: generated from the handler registry, plus the feature
//! levels Skua claims (v3+, what `kafka-features describe` shows).
//!
//! A request of a version above ours is answered in v0 format with UNSUPPORTED_VERSION and our
//! ranges (KIP-511), so that the client can retry with a version we know.
//!
//! Features (KIP-584): Kafka 4.4 lists seven and finalizes most at their newest level. Skua claims
//! only what it does, so clients that read a finalized level (the Java producer turns on
//! transactions v2 at `transaction.version` 2) do not take it for a Kafka it is not:
//!
//! | feature | Kafka 4.4 supported / finalized | Skua supported / finalized | why |
//! |---|---|---|---|
//! | `metadata.version` | 3.3-IV3 (7) – 4.4-IV2 (33) / 33 | 7 – 7 / 7 | Kafka's oldest KRaft level: a KRaft cluster with none of the later levels' additions (directory assignment, ELR, KIP-848 and KIP-853 records); Skua's metadata log is its own, not Kafka's records |
//! | `kraft.version` | 0 – 1 / 0 (not listed) | 0 – 0 / not listed | a static quorum (`controller.quorum.voters`), no KIP-853 |
//! | `group.version` | 0 – 1 / 1 | 0 – 0 / not listed | the classic group protocol only, no ConsumerGroupHeartbeat (KIP-848) |
//! | `transaction.version` | 0 – 2 / 2 | 0 – 0 / not listed | idempotence but no transactions |
//! | `eligible.leader.replicas.version` | 0 – 1 / 1 | 0 – 0 / not listed | no ELR (KIP-966) |
//! | `share.version` | 0 – 2 / 2 | 0 – 0 / not listed | no share groups (KIP-932) |
//! | `streams.version` | 0 – 1 / 1 | 0 – 0 / not listed | no streams groups (KIP-1071) |
//!
//! As in Kafka, a feature at level 0 is supported but not finalized, and versions 0–3 leave out
//! the features whose supported minimum is 0 (so they show `metadata.version` alone). Skua's
//! levels never change (UpdateFeatures takes only the level a feature has, `update_features`):
//! the finalized epoch is 0.

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::REGISTRY;
use crate::codec::frame::{encode_response, Frame};

/// A feature Skua claims: (name, supported minimum, supported maximum); the finalized level is
/// the maximum, left out when 0.
pub const FEATURES: [(&str, i16, i16); 7] = [
    ("metadata.version", METADATA_VERSION_3_3_IV3, METADATA_VERSION_3_3_IV3),
    ("kraft.version", 0, 0),
    ("group.version", 0, 0),
    ("transaction.version", 0, 0),
    ("eligible.leader.replicas.version", 0, 0),
    ("share.version", 0, 0),
    ("streams.version", 0, 0),
];

/// `metadata.version` 3.3-IV3, the oldest level Kafka 4.x supports.
const METADATA_VERSION_3_3_IV3: i16 = 7;

/// The finalized levels never change, so their epoch never moves.
const FINALIZED_FEATURES_EPOCH: i64 = 0;

/// The first version with features, and the first that lists those with minimum 0.
const FEATURES_VERSION_MIN: i16 = 3;
const FEATURES_FROM_ZERO_VERSION_MIN: i16 = 4;

pub fn handle(frame: &Frame) -> anyhow::Result<Bytes> {
    let supported = frame.api_version <= 4;
    let mut response = ApiVersionsResponse::default();
    response.api_keys = REGISTRY
        .iter()
        .map(|handler| {
            let mut version = ApiVersion::default();
            version.api_key = handler.api_key as i16;
            version.min_version = handler.min_version;
            version.max_version = handler.max_version;
            version
        })
        .collect();
    if !supported {
        response.error_code = ResponseError::UnsupportedVersion.code();
    }
    let version = if supported { frame.api_version } else { 0 };
    if version >= FEATURES_VERSION_MIN {
        add_features(&mut response, version);
    }
    encode_response(ApiKey::ApiVersions, version, frame.correlation_id, &response)
}

fn add_features(response: &mut ApiVersionsResponse, version: i16) {
    let listed = FEATURES.iter().filter(|(_, min, _)| *min > 0 || version >= FEATURES_FROM_ZERO_VERSION_MIN);
    for &(name, min, max) in listed {
        let mut feature = SupportedFeatureKey::default();
        feature.name = StrBytes::from_static_str(name);
        feature.min_version = min;
        feature.max_version = max;
        response.supported_features.push(feature);
    }
    for &(name, _, level) in FEATURES.iter().filter(|(_, _, max)| *max > 0) {
        let mut feature = FinalizedFeatureKey::default();
        feature.name = StrBytes::from_static_str(name);
        feature.max_version_level = level;
        feature.min_version_level = level;
        response.finalized_features.push(feature);
    }
    response.finalized_features_epoch = FINALIZED_FEATURES_EPOCH;
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Decodable;

    fn answer(version: i16) -> ApiVersionsResponse {
        let frame = Frame {
            api_key: ApiKey::ApiVersions,
            api_version: version,
            correlation_id: 7,
            client_id: None,
            body: Bytes::new(),
            peer: None,
        };
        let bytes = handle(&frame).expect("encoded");
        // size (4), correlation id (4); ApiVersions responses always use header v0.
        let mut body = bytes.slice(8..);
        ApiVersionsResponse::decode(&mut body, version).expect("decoded")
    }

    fn names(features: &[SupportedFeatureKey]) -> Vec<(&str, i16, i16)> {
        features.iter().map(|feature| (feature.name.as_str(), feature.min_version, feature.max_version)).collect()
    }

    #[test]
    fn features_by_version() {
        assert!(answer(2).supported_features.is_empty());
        let v3 = answer(3);
        assert_eq!(names(&v3.supported_features), [("metadata.version", 7, 7)]);
        let v4 = answer(4);
        assert_eq!(v4.supported_features.len(), FEATURES.len());
        assert!(names(&v4.supported_features).contains(&("group.version", 0, 0)));
        for response in [v3, v4] {
            assert_eq!(response.finalized_features_epoch, 0);
            let finalized: Vec<_> = response
                .finalized_features
                .iter()
                .map(|feature| (feature.name.as_str(), feature.min_version_level, feature.max_version_level))
                .collect();
            assert_eq!(finalized, [("metadata.version", 7, 7)]);
        }
    }
}
