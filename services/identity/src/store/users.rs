//! Users and their role assignments.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use fleetdesk_store::MultiBackend;

use super::schema::{roles, user_roles, users};
use super::{DbConn, contains_pattern, lower};

/// A user row.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub status: String,
    pub permissions: String,
    pub avatar_url: Option<String>,
    pub version: i64,
    pub last_login_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Profile fields a PATCH may change; `None` leaves a field as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub name: Option<String>,
    pub avatar_url: Option<Option<String>>,
    pub permissions: Option<String>,
    pub status: Option<String>,
    pub password_hash: Option<Option<String>>,
}

/// Filters of `GET /users`.
#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    pub role: Option<String>,
    pub status: Option<String>,
    pub q: Option<String>,
}

pub fn insert(conn: &mut DbConn, row: &UserRow) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConn, tenant_id: &str, id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::id.eq(id))
        .first(conn)
        .optional()
}

pub fn find_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::email.eq(email))
        .first(conn)
        .optional()
}

fn filtered<'a>(tenant_id: &'a str, filter: &'a UserFilter) -> users::BoxedQuery<'a, MultiBackend> {
    let mut query = users::table
        .filter(users::tenant_id.eq(tenant_id))
        .into_boxed();
    if let Some(status) = &filter.status {
        query = query.filter(users::status.eq(status));
    }
    if let Some(q) = &filter.q {
        let pattern = contains_pattern(q);
        query = query.filter(
            lower(users::name)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(users::email).like(pattern).escape('\\')),
        );
    }
    if let Some(role) = &filter.role {
        let holders = user_roles::table
            .inner_join(roles::table)
            .filter(roles::tenant_id.eq(tenant_id))
            .filter(roles::moniker.eq(role))
            .select(user_roles::user_id);
        query = query.filter(users::id.eq_any(holders));
    }
    query
}

/// One page of the tenant's users, oldest first, and the total count.
pub fn list(
    conn: &mut DbConn,
    tenant_id: &str,
    filter: &UserFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<UserRow>, i64)> {
    let total = filtered(tenant_id, filter).count().get_result(conn)?;
    let rows = filtered(tenant_id, filter)
        .order((users::created_at.asc(), users::id.asc()))
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    Ok((rows, total))
}

/// Writes `changes` if the version is still `expected`; false when it moved on.
pub fn update(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
    expected: i64,
    changes: &UserChanges,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let target = users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::id.eq(id))
        .filter(users::version.eq(expected));
    let n = diesel::update(target)
        .set((
            changes,
            users::version.eq(expected + 1),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Bumps the version and `updated_at` without other changes (after a role change).
pub fn touch(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::version.eq(users::version + 1),
            users::updated_at.eq(now),
        ))
        .execute(conn)
        .map(drop)
}

pub fn record_login(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::last_login_at.eq(now))
        .execute(conn)
        .map(drop)
}

pub fn delete(conn: &mut DbConn, tenant_id: &str, id: &str) -> QueryResult<bool> {
    let n = diesel::delete(
        users::table
            .filter(users::tenant_id.eq(tenant_id))
            .filter(users::id.eq(id)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// Role monikers of each user, in one query.
pub fn role_monikers(
    conn: &mut DbConn,
    user_ids: &[String],
) -> QueryResult<HashMap<String, Vec<String>>> {
    let pairs: Vec<(String, String)> = user_roles::table
        .inner_join(roles::table)
        .filter(user_roles::user_id.eq_any(user_ids))
        .order(roles::moniker.asc())
        .select((user_roles::user_id, roles::moniker))
        .load(conn)?;
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (user, moniker) in pairs {
        map.entry(user).or_default().push(moniker);
    }
    Ok(map)
}

/// The JSON permission lists of every role the user holds.
pub fn role_permission_lists(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<String>> {
    user_roles::table
        .inner_join(roles::table)
        .filter(user_roles::user_id.eq(user_id))
        .select(roles::permissions)
        .load(conn)
}

/// Replaces the user's roles.
pub fn set_roles(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
    role_ids: &[String],
) -> QueryResult<()> {
    diesel::delete(user_roles::table.filter(user_roles::user_id.eq(user_id))).execute(conn)?;
    let rows: Vec<_> = role_ids
        .iter()
        .map(|r| {
            (
                user_roles::user_id.eq(user_id),
                user_roles::role_id.eq(r),
                user_roles::tenant_id.eq(tenant_id),
            )
        })
        .collect();
    for row in rows {
        diesel::insert_into(user_roles::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Active users of the tenant holding the role, other than `except`.
pub fn count_active_holders(
    conn: &mut DbConn,
    role_id: &str,
    except: Option<&str>,
) -> QueryResult<i64> {
    let mut query = user_roles::table
        .inner_join(users::table)
        .filter(user_roles::role_id.eq(role_id))
        .filter(users::status.eq("active"))
        .into_boxed();
    if let Some(id) = except {
        query = query.filter(users::id.ne(id));
    }
    query.count().get_result(conn)
}
