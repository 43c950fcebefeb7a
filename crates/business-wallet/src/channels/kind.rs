//! [`ChannelKind`]: which channel type a channel is, and the one mapping between a kind and the
//! TEXT value stored on channel rows and sent as the body's `type` (`WEBHOOK`, `KAFKA`, `JMS`,
//! `PULL`, or a custom adapter's own name).

use std::fmt;

/// Stored name of [`ChannelKind::Webhook`].
pub const WEBHOOK: &str = "WEBHOOK";
/// Stored name of [`ChannelKind::Kafka`].
pub const KAFKA: &str = "KAFKA";
/// Stored name of [`ChannelKind::Jms`].
pub const JMS: &str = "JMS";
/// Stored name of [`ChannelKind::Pull`].
pub const PULL: &str = "PULL";

/// A channel type: one of the built-in ones or a custom adapter's.
///
/// The order (`Ord`) is the one the UI lists them in: the built-in types first, then the custom
/// ones by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChannelKind {
    /// HTTP POST in CloudEvents binary mode.
    Webhook,
    /// Records on a Kafka topic.
    Kafka,
    /// Messages on a JMS queue or topic.
    Jms,
    /// Fetched by the receiver over HTTP (`GET .../events`), acknowledged with a commit.
    Pull,
    /// An embedding application's adapter, by its type name.
    Custom(String),
}

impl ChannelKind {
    /// The built-in kinds, in the order the OpenAPI document lists their body variants.
    pub const BUILT_IN: [ChannelKind; 4] = [
        ChannelKind::Webhook,
        ChannelKind::Kafka,
        ChannelKind::Jms,
        ChannelKind::Pull,
    ];

    /// The kind a stored or requested type name stands for (exact, case-sensitive).
    pub fn parse(name: &str) -> ChannelKind {
        match name {
            WEBHOOK => ChannelKind::Webhook,
            KAFKA => ChannelKind::Kafka,
            JMS => ChannelKind::Jms,
            PULL => ChannelKind::Pull,
            other => ChannelKind::Custom(other.to_string()),
        }
    }

    /// The stored TEXT value, also the body's `type`.
    pub fn as_str(&self) -> &str {
        match self {
            ChannelKind::Webhook => WEBHOOK,
            ChannelKind::Kafka => KAFKA,
            ChannelKind::Jms => JMS,
            ChannelKind::Pull => PULL,
            ChannelKind::Custom(name) => name,
        }
    }

    /// Whether the type is built into the product.
    pub fn is_built_in(&self) -> bool {
        !matches!(self, ChannelKind::Custom(_))
    }

    /// The body field that holds the type's own settings: `webhook`, `kafka`, `jms`, `pull`,
    /// or `config` for a custom adapter.
    pub fn block_field(&self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Kafka => "kafka",
            ChannelKind::Jms => "jms",
            ChannelKind::Pull => "pull",
            ChannelKind::Custom(_) => "config",
        }
    }

    /// Whether `name` names this kind.
    pub fn is(&self, name: &str) -> bool {
        self.as_str() == name
    }

    /// Whether this kind is among the type names `offered`.
    pub fn offered_in(&self, offered: &[String]) -> bool {
        offered.iter().any(|name| self.is(name))
    }

    /// Whether any of the type names `offered` is a custom adapter's.
    pub fn any_custom(offered: &[String]) -> bool {
        offered.iter().any(|name| !ChannelKind::parse(name).is_built_in())
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ChannelKind {
    fn from(name: &str) -> ChannelKind {
        ChannelKind::parse(name)
    }
}

#[cfg(test)]
mod tests {
    use super::ChannelKind;

    #[test]
    fn the_stored_value_maps_back_to_its_kind() {
        for kind in ChannelKind::BUILT_IN
            .into_iter()
            .chain([ChannelKind::Custom("ORDER_BOOK".into())])
        {
            assert_eq!(ChannelKind::parse(kind.as_str()), kind);
        }
        assert_eq!(ChannelKind::parse("kafka"), ChannelKind::Custom("kafka".into()));
        assert_eq!(ChannelKind::Custom("X".into()).block_field(), "config");
    }

    #[test]
    fn built_in_kinds_sort_first_in_their_order() {
        let mut kinds: Vec<ChannelKind> = ["ZED", "JMS", "AAA", "WEBHOOK", "KAFKA"].map(ChannelKind::parse).into();
        kinds.sort();
        let names: Vec<&str> = kinds.iter().map(ChannelKind::as_str).collect();
        assert_eq!(names, ["WEBHOOK", "KAFKA", "JMS", "AAA", "ZED"]);
    }
}
