//! Raw SQL that stays prepared. Diesel never caches `sql_query` statements (their text could
//! be built at run time), so every call would be planned again; for the read model that
//! planning costs more than running the queries. `prepared` takes SQL that is a compile-time
//! constant with `$1`, `$2`, … placeholders; diesel then keys its per-connection statement
//! cache by the SQL text and Postgres plans each query once per connection.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};

/// One bind value with its SQL type, erased so a query can hold several of any type.
pub trait BindValue: Send {
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

struct Typed<ST, V> {
    value: V,
    sql_type: std::marker::PhantomData<fn() -> ST>,
}

impl<ST, V> BindValue for Typed<ST, V>
where
    Pg: HasSqlType<ST>,
    V: ToSql<ST, Pg> + Send,
{
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, V>(&self.value)
    }
}

/// A bind value for `$n`, the n-th of the list given to `prepared`.
pub fn bind<ST: 'static, V>(value: V) -> Box<dyn BindValue>
where
    Pg: HasSqlType<ST>,
    V: ToSql<ST, Pg> + Send + 'static,
{
    Box::new(Typed {
        value,
        sql_type: std::marker::PhantomData,
    })
}

pub struct Prepared {
    sql: &'static str,
    binds: Vec<Box<dyn BindValue>>,
}

/// `sql` with its placeholders bound, in order, to `binds`.
pub fn prepared(sql: &'static str, binds: Vec<Box<dyn BindValue>>) -> Prepared {
    Prepared { sql, binds }
}

impl QueryId for Prepared {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared {
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for Prepared {
    /// Copies the SQL, replacing each `$n` by a bind of the n-th value (a value used twice is
    /// bound twice, so the text diesel prepares is the same on every call).
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut rest = self.sql;
        while let Some(at) = rest.find('$') {
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            if digits == 0 {
                out.push_sql(&rest[..=at]);
                rest = &rest[at + 1..];
                continue;
            }
            out.push_sql(&rest[..at]);
            let n: usize = rest[at + 1..at + 1 + digits]
                .parse()
                .map_err(|_| diesel::result::Error::QueryBuilderError("bad placeholder".into()))?;
            let value = n
                .checked_sub(1)
                .and_then(|i| self.binds.get(i))
                .ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError(
                        format!("${n} has no bind value").into(),
                    )
                })?;
            value.push(&mut out)?;
            rest = &rest[at + 1 + digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

impl<Conn> diesel::RunQueryDsl<Conn> for Prepared {}
