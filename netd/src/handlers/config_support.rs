//! What the two config-changing APIs (AlterConfigs, IncrementalAlterConfigs) answer alike: a
//! resource named twice, an unknown topic, a refused dynamic broker key, a refusal of the
//! controller, and the list arithmetic of APPEND and SUBTRACT.
//!
//! Must not know: either request's layout (each handler walks its own).

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;

use crate::codec::errors::TopicError;
use crate::config::dynamic::BrokerConfigRefusal;

/// A resource's answer when it is refused: the code and Kafka's message, if any.
pub type Refusal = (ResponseError, Option<String>);

/// The (type, name) resources a request names more than once: each is refused (Kafka's rule).
pub fn repeated_resources<'a>(resources: impl IntoIterator<Item = (i8, &'a str)>) -> BTreeSet<(i8, &'a str)> {
    let mut named: BTreeMap<(i8, &str), usize> = BTreeMap::new();
    for resource in resources {
        *named.entry(resource).or_default() += 1;
    }
    named.into_iter().filter(|(_, count)| *count > 1).map(|(resource, _)| resource).collect()
}

pub fn repeated_resource() -> Refusal {
    (ResponseError::InvalidRequest, Some("Each resource must appear at most once.".to_string()))
}

pub fn unknown_topic(name: &str) -> Refusal {
    (ResponseError::UnknownTopicOrPartition, Some(format!("The topic '{name}' does not exist.")))
}

/// Whether a broker or broker-logger resource names this node, as Kafka checks it
/// (`ConfigAdminManager.preprocess`; clients send such resources to the node they name): a name that
/// is no number, or another node's id, is INVALID_REQUEST with Kafka's words (`expected` is the
/// sentence's start, which differs between resource types).
pub fn check_node(me: i32, name: &str, expected: &str) -> Result<(), Refusal> {
    let Ok(id) = name.parse::<i32>() else {
        return Err((ResponseError::InvalidRequest, Some(format!("Node id must be an integer, but it is: {name}"))));
    };
    if id != me {
        return Err((ResponseError::InvalidRequest, Some(format!("{expected} {me}, but received {id}"))));
    }
    Ok(())
}

/// A refused dynamic broker config: a bad value INVALID_REQUEST (as Kafka answers for a broker),
/// a key Skua does not change at runtime INVALID_CONFIG with a sentence that says so.
pub fn broker_refusal(refusal: BrokerConfigRefusal) -> Refusal {
    match refusal {
        BrokerConfigRefusal::InvalidValue(message) => (ResponseError::InvalidRequest, Some(message)),
        BrokerConfigRefusal::NotDynamic(key) => not_dynamic(&key),
    }
}

/// A broker key Skua does not change at runtime: one it reads from its configuration file, one it
/// has no use for at all (a Kafka key it ignores there too, such as `num.io.threads`: Skua runs
/// one shard thread per core), or one neither knows (Kafka would store it).
pub fn not_dynamic(key: &str) -> Refusal {
    let message = if crate::config::reads_key(key) {
        format!("Skua does not change the broker config {key} at runtime; set it in the configuration file")
    } else if crate::config::is_kafka_key(key) {
        format!("Skua does not use the broker config {key}; a configuration file's is ignored too")
    } else {
        format!("{key} is not a broker config Kafka 4.4 or Skua knows")
    };
    (ResponseError::InvalidConfig, Some(message))
}

/// The controller's refusal to store a change, with its Kafka code and message.
pub fn controller_refusal(error: TopicError) -> Refusal {
    let code = crate::codec::errors::topic_error_code(&error);
    (ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError), Some(error.to_string()))
}

/// APPEND or SUBTRACT on a key that is not a list, as Kafka refuses it.
pub fn not_a_list(key: &str, append: bool) -> Refusal {
    let operation = if append { "APPEND" } else { "SUBTRACT" };
    (ResponseError::InvalidConfig, Some(format!("Can't {operation} to key {key} because its type is not LIST.")))
}

/// A list value (`current`, comma-separated) with the items of `value` appended (those not in it
/// yet, in order) or subtracted, comma-separated again (to be checked by the key's rule).
pub fn list_operation(current: &str, value: &str, append: bool) -> String {
    let mut items: Vec<&str> = current.split(',').filter(|item| !item.is_empty()).collect();
    for item in value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        if append {
            if !items.contains(&item) {
                items.push(item);
            }
        } else {
            items.retain(|have| *have != item);
        }
    }
    items.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_append_new_items_once_and_subtract_every_copy() {
        assert_eq!(list_operation("delete", "compact, delete", true), "delete,compact");
        assert_eq!(list_operation("compact,delete", "delete", false), "compact");
        assert_eq!(list_operation("", "compact", true), "compact");
        assert_eq!(list_operation("compact", "compact", false), "");
    }

    #[test]
    fn only_resources_named_twice_are_repeated() {
        let repeated = repeated_resources([(2, "a"), (4, "a"), (2, "a"), (2, "b")]);
        assert_eq!(repeated, BTreeSet::from([(2, "a")]));
    }
}
