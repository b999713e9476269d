//! UpdateFeatures (key 57), versions 0–2: `kafka-features upgrade / downgrade / disable`.
//!
//! Skua's feature levels never change (`api_versions::FEATURES`: each supported range is the one
//! level Skua finalizes), so an update succeeds only when it asks for the level a feature already
//! has, and changes nothing. Any other is refused as Kafka 4.4's controller refuses it, checked in
//! Kafka's order and with its words: a negative level, a feature it does not know, a level outside
//! the supported range (which, here, is every other level). As in Kafka, one refused update fails
//! the whole request: the top-level error names the first refused update in request order, and no
//! per-feature results are listed; a successful request lists each update with NONE (versions
//! 0–1; version 2 lists none). `validate_only` changes nothing either way. The "local controller"
//! Kafka names is the node that answers (every Skua node has the same levels).

use bytes::Bytes;
use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{ApiKey, UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::api_versions::FEATURES;
use crate::codec::frame::{decode_body, encode_response, Frame};

/// The first version whose response lists no per-feature results.
const NO_RESULTS_VERSION_MIN: i16 = 2;

/// Why one update is refused, in Kafka's words (without the request-level preamble).
fn refusal(node_id: i32, feature: &str, level: i16) -> Option<String> {
    let invalid = |reason: String| Some(format!("Invalid update version {level} for feature {feature}. {reason}"));
    if level < 0 {
        return invalid("A feature version cannot be less than 0.".to_string());
    }
    let Some((_, min, max)) = FEATURES.iter().find(|(name, _, _)| *name == feature) else {
        return invalid(format!("Local controller {node_id} does not support this feature."));
    };
    if level < *min || level > *max {
        return invalid(format!("Local controller {node_id} only supports versions {min}-{max}"));
    }
    // In range, so the level Skua finalizes: nothing to change.
    None
}

pub fn handle(node_id: i32, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: UpdateFeaturesRequest = decode_body(frame)?;
    let mut response = UpdateFeaturesResponse::default();
    // No message on success, as Kafka (the generated default is an empty one).
    response.error_message = None;
    let refused = request
        .feature_updates
        .iter()
        .find_map(|update| refusal(node_id, update.feature.as_str(), update.max_version_level));
    match refused {
        Some(reason) => {
            response.error_code = ResponseError::InvalidUpdateVersion.code();
            response.error_message = Some(StrBytes::from_string(format!(
                "The update failed for all features since the following feature had an error: {reason}"
            )));
        }
        None if frame.api_version < NO_RESULTS_VERSION_MIN => {
            response.results = request
                .feature_updates
                .iter()
                .map(|update| {
                    let mut result = UpdatableFeatureResult::default();
                    result.feature = update.feature.clone();
                    // Kafka's words for success here (`ApiError.NONE`'s message).
                    result.error_message = Some(StrBytes::from_static_str("NONE"));
                    result
                })
                .collect();
        }
        None => {}
    }
    encode_response(ApiKey::UpdateFeatures, frame.api_version, frame.correlation_id, &response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_finalized_level_is_taken() {
        assert_eq!(refusal(1, "metadata.version", 7), None);
        assert_eq!(refusal(1, "group.version", 0), None);
        assert_eq!(
            refusal(1, "group.version", 1).as_deref(),
            Some("Invalid update version 1 for feature group.version. Local controller 1 only supports versions 0-0")
        );
        assert_eq!(
            refusal(3, "nosuch", 1).as_deref(),
            Some("Invalid update version 1 for feature nosuch. Local controller 3 does not support this feature.")
        );
        assert_eq!(
            refusal(1, "nosuch", -1).as_deref(),
            Some("Invalid update version -1 for feature nosuch. A feature version cannot be less than 0.")
        );
    }
}
