//! The tags and segments slices: which labels the customer carries, who gave them and when.

use crate::db::prepared::{bind, prepared};
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::db::enums::{AssignmentSource, SegmentKind};
use crate::view::{JsonRow, decode};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssignedTag {
    pub tag_id: i64,
    pub name: String,
    pub color: String,
    pub assigned_by: String,
    pub assigned_by_name: String,
    pub assigned_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssignedSegment {
    pub segment_id: i64,
    pub name: String,
    pub kind: SegmentKind,
    pub source: AssignmentSource,
    pub assigned_by: Option<String>,
    pub assigned_at: DateTime<Utc>,
}

const TAGS_SQL: &str = "SELECT coalesce(jsonb_agg(jsonb_build_object('tag_id', t.id, 'name', t.name, 'color', t.color,
        'assigned_by', a.assigned_by, 'assigned_by_name', a.assigned_by_name, 'assigned_at', a.assigned_at)
        ORDER BY lower(t.name)), '[]') AS data
    FROM customer_tag_assignments a JOIN customer_tags t ON t.id = a.tag_id WHERE a.customer_id = $1";

const SEGMENTS_SQL: &str = "SELECT coalesce(jsonb_agg(jsonb_build_object('segment_id', s.id, 'name', s.name, 'kind', s.kind,
        'source', a.source, 'assigned_by', a.assigned_by, 'assigned_at', a.assigned_at)
        ORDER BY s.kind, lower(s.name)), '[]') AS data
    FROM customer_segment_assignments a JOIN customer_segments s ON s.id = a.segment_id WHERE a.customer_id = $1";

pub async fn load_tags(
    mut conn: &AsyncPgConnection,
    customer_id: i64,
) -> QueryResult<Vec<AssignedTag>> {
    decode(
        prepared(TAGS_SQL, vec![bind::<BigInt, _>(customer_id)])
            .get_result::<JsonRow>(&mut conn)
            .await?,
    )
}

pub async fn load_segments(
    mut conn: &AsyncPgConnection,
    customer_id: i64,
) -> QueryResult<Vec<AssignedSegment>> {
    decode(
        prepared(SEGMENTS_SQL, vec![bind::<BigInt, _>(customer_id)])
            .get_result::<JsonRow>(&mut conn)
            .await?,
    )
}
