//! The tag catalogue: listing with usage counts and creating tags (names unique ignoring case).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::db::schema::{customer_tag_assignments, customer_tags};

#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = customer_tags)]
pub struct Tag {
    pub id: i64,
    pub name: String,
    pub color: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TagWithUsage {
    #[serde(flatten)]
    pub tag: Tag,
    /// How many customers carry the tag.
    pub customer_count: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = customer_tags)]
pub struct NewTag<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub created_by: &'a str,
}

pub async fn list_with_usage(conn: &mut AsyncPgConnection) -> QueryResult<Vec<TagWithUsage>> {
    let rows: Vec<(Tag, i64)> = customer_tags::table
        .left_join(customer_tag_assignments::table)
        .group_by(customer_tags::id)
        .select((
            Tag::as_select(),
            diesel::dsl::count(customer_tag_assignments::id.nullable()),
        ))
        .order(customer_tags::name.asc())
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(tag, customer_count)| TagWithUsage {
            tag,
            customer_count,
        })
        .collect())
}

/// Inserts the tag; a name already taken (ignoring case) is a unique violation for the caller.
pub async fn create(conn: &mut AsyncPgConnection, new: &NewTag<'_>) -> QueryResult<Tag> {
    diesel::insert_into(customer_tags::table)
        .values(new)
        .returning(Tag::as_returning())
        .get_result(conn)
        .await
}
