//! The Postgres enum types of the schema, each a Rust enum that reads, writes, serialises to
//! JSON and documents itself in OpenAPI under its database label.

macro_rules! pg_enum {
    ($(#[$meta:meta])* $name:ident, $sql:ident, $pg:literal { $($variant:ident => $label:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, diesel::sql_types::SqlType, diesel::query_builder::QueryId)]
        #[diesel(postgres_type(name = $pg))]
        pub struct $sql;

        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
            utoipa::ToSchema,
        )]
        #[diesel(sql_type = $sql)]
        pub enum $name {
            $(#[serde(rename = $label)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let expected: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    format!("unknown {} '{}' (expected one of: {})", $pg, s, expected.join(", "))
                })
            }
        }

        impl diesel::serialize::ToSql<$sql, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                use std::io::Write;
                out.write_all(self.as_str().as_bytes())?;
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::deserialize::FromSql<$sql, diesel::pg::Pg> for $name {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let label = std::str::from_utf8(value.as_bytes())?;
                Ok(label.parse::<$name>()?)
            }
        }
    };
}

pg_enum!(OrderStatus, OrderStatusType, "order_status" {
    Pending => "pending", Paid => "paid", Shipped => "shipped", Delivered => "delivered",
    Cancelled => "cancelled", Refunded => "refunded",
});
pg_enum!(LoyaltyTier, LoyaltyTierType, "loyalty_tier" {
    Bronze => "bronze", Silver => "silver", Gold => "gold", Platinum => "platinum",
});
pg_enum!(ConsentChannel, ConsentChannelType, "consent_channel" {
    Email => "email", Sms => "sms", Push => "push",
});
pg_enum!(CampaignEventType, CampaignEventTypeType, "campaign_event_type" {
    Sent => "sent", Opened => "opened", Clicked => "clicked", Unsubscribed => "unsubscribed",
});
pg_enum!(TicketStatus, TicketStatusType, "ticket_status" {
    Open => "open", Pending => "pending", Resolved => "resolved", Closed => "closed",
});
pg_enum!(TicketPriority, TicketPriorityType, "ticket_priority" {
    Low => "low", Normal => "normal", High => "high", Urgent => "urgent",
});
pg_enum!(DeviceType, DeviceTypeType, "device_type" {
    Desktop => "desktop", Mobile => "mobile", Tablet => "tablet",
});
pg_enum!(NoteVisibility, NoteVisibilityType, "note_visibility" {
    Public => "public", Private => "private",
});
pg_enum!(SegmentKind, SegmentKindType, "segment_kind" {
    Automatic => "automatic", Manual => "manual",
});
pg_enum!(AssignmentSource, AssignmentSourceType, "assignment_source" {
    Auto => "auto", Manual => "manual",
});
pg_enum!(ChurnRiskLevel, ChurnRiskLevelType, "churn_risk_level" {
    Low => "low", Medium => "medium", High => "high", Critical => "critical",
});
pg_enum!(ReferralStatus, ReferralStatusType, "referral_status" {
    Invited => "invited", SignedUp => "signed_up", Converted => "converted",
});
pg_enum!(EmailStatus, EmailStatusType, "email_status" {
    Queued => "queued", Sent => "sent", Failed => "failed",
});
