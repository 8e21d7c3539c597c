//! The profile slice: who the customer is, with personal data masked for roles without
//! `see_pii`. Every field is always present (null when unknown).

use crate::db::prepared::{bind, prepared};
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::domain::masking::Masking;
use crate::view::{JsonRow, decode};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Address {
    pub line: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

impl Address {
    /// The known parts, comma-separated; None when nothing is known.
    pub fn joined(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.line, &self.city, &self.postal_code, &self.country]
            .iter()
            .filter_map(|v| v.as_deref())
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Profile {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub address: Address,
    /// ISO date, or `***` when masked.
    pub birthday: Option<String>,
    pub created_at: DateTime<Utc>,
    pub customer_since_days: i64,
    /// Whether personal fields above are masked for the viewer's role.
    pub masked: bool,
}

const SQL: &str = "SELECT jsonb_build_object(
    'id', c.id, 'name', c.name, 'email', c.email, 'phone', c.phone,
    'address', jsonb_build_object('line', c.address_line, 'city', c.city, 'postal_code', c.postal_code, 'country', c.country),
    'birthday', c.birthday::text, 'created_at', c.created_at,
    'customer_since_days', (now()::date - c.created_at::date), 'masked', false) AS data
  FROM customers c WHERE c.id = $1";

pub async fn load(mut conn: &AsyncPgConnection, customer_id: i64) -> QueryResult<Profile> {
    decode(
        prepared(SQL, vec![bind::<BigInt, _>(customer_id)])
            .get_result::<JsonRow>(&mut conn)
            .await?,
    )
}

impl Profile {
    pub fn masked(self, masking: Masking) -> Profile {
        if masking == Masking::Clear {
            return self;
        }
        let hide = |v: Option<String>| v.map(|v| masking.hidden(&v));
        Profile {
            email: masking.email(&self.email),
            phone: self.phone.map(|p| masking.phone(&p)),
            address: Address {
                line: hide(self.address.line),
                city: hide(self.address.city),
                postal_code: hide(self.address.postal_code),
                country: self.address.country,
            },
            birthday: hide(self.birthday),
            masked: true,
            ..self
        }
    }
}
