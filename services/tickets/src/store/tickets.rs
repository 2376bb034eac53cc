//! Tickets, their SLA clocks, tags, comments, history and SLA ledger.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use fleetdesk_events::Outgoing;
use fleetdesk_store::outbox::{self, NewMessage};
use fleetdesk_store::{
    Backend, CountRows, Db, Fixed, Gather, MultiBackend, Planned, PreparedIf, StoreError, Together,
    Unnest,
};

use super::DbConn;
use super::products::ProductRow;
use super::schema::{
    products, sla_ledger, ticket_comments, ticket_counters, ticket_history, ticket_sla,
    ticket_tags, tickets,
};
use super::search;
use crate::domain::fields::Severity;
use crate::domain::sla::Mark;

/// A ticket row. It and the rows below insert `NULL` for `None` rather than `DEFAULT`
/// (`treat_none_as_default_value = false`; no optional column has a default), so each insert
/// keeps one SQL text and diesel keeps it prepared instead of planning it on every run.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = tickets, treat_none_as_default_value = false)]
pub struct TicketRow {
    pub id: String,
    pub tenant_id: String,
    pub number: i64,
    pub key: String,
    pub product_id: String,
    pub title: String,
    pub description: String,
    pub requester_name: String,
    pub requester_email: String,
    pub company_id: Option<String>,
    pub channel: String,
    pub ticket_type: String,
    /// JSON array.
    pub tags: String,
    pub status: String,
    pub severity_rank: i32,
    pub assignee_id: Option<String>,
    /// JSON: the triage result.
    pub triage: String,
    pub severity_overridden: i32,
    pub escalation_level: i32,
    pub escalated_to: Option<String>,
    pub comments_count: i32,
    pub first_response_at: Option<NaiveDateTime>,
    pub resolved_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub sla_due_at: Option<NaiveDateTime>,
    pub created_by: String,
    pub deleted_at: Option<NaiveDateTime>,
    pub deleted_by: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Whole seconds from `from` to `to`, none when `to` is none and never negative: how long a
/// ticket waited, kept with it for the statistics' medians.
pub fn seconds_since(from: NaiveDateTime, to: Option<NaiveDateTime>) -> Option<i64> {
    to.map(|t| (t - from).num_seconds().max(0))
}

/// What a change may set; `None` leaves a field.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = tickets)]
pub struct TicketChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub ticket_type: Option<String>,
    pub tags: Option<String>,
    pub company_id: Option<Option<String>>,
    pub status: Option<String>,
    pub severity_rank: Option<i32>,
    pub assignee_id: Option<Option<String>>,
    pub severity_overridden: Option<i32>,
    pub escalation_level: Option<i32>,
    pub escalated_to: Option<Option<String>>,
    pub comments_count: Option<i32>,
    pub first_response_at: Option<Option<NaiveDateTime>>,
    pub resolved_at: Option<Option<NaiveDateTime>>,
    pub closed_at: Option<Option<NaiveDateTime>>,
    pub sla_due_at: Option<Option<NaiveDateTime>>,
    pub deleted_at: Option<Option<NaiveDateTime>>,
    pub deleted_by: Option<Option<String>>,
}

/// A ticket's SLA clock and due times.
#[derive(Debug, Clone, Queryable, Insertable, AsChangeset)]
#[diesel(
    table_name = ticket_sla,
    treat_none_as_null = true,
    treat_none_as_default_value = false
)]
pub struct SlaRow {
    pub ticket_id: String,
    pub tenant_id: String,
    pub running_since: Option<NaiveDateTime>,
    pub elapsed_seconds: i64,
    pub paused_since: Option<NaiveDateTime>,
    pub paused_seconds: i64,
    pub first_response_due_at: Option<NaiveDateTime>,
    pub resolution_due_at: Option<NaiveDateTime>,
    pub first_response_breached_at: Option<NaiveDateTime>,
    pub resolution_breached_at: Option<NaiveDateTime>,
    /// Whole seconds from the ticket's creation to its first public agent reply (see
    /// [`seconds_since`]): kept for the statistics' medians.
    pub first_response_seconds: Option<i64>,
    /// Whole seconds from the ticket's creation to its resolution.
    pub resolution_seconds: Option<i64>,
}

/// A comment or internal note.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = ticket_comments, treat_none_as_default_value = false)]
pub struct CommentRow {
    pub id: String,
    pub tenant_id: String,
    pub ticket_id: String,
    /// `agent` or `requester`.
    pub author_kind: String,
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    pub body: String,
    pub visibility: String,
    pub created_at: NaiveDateTime,
}

/// One recorded change.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = ticket_history, treat_none_as_default_value = false)]
pub struct HistoryRow {
    pub id: String,
    pub tenant_id: String,
    pub ticket_id: String,
    pub actor: String,
    pub field: String,
    pub from_value: Option<String>,
    pub to_value: Option<String>,
    pub note: Option<String>,
    pub at: NaiveDateTime,
}

/// One SLA ledger entry: `start`, `pause`, `resume`, `stop`, `first_response`, `retarget`,
/// `breach`.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = sla_ledger, treat_none_as_default_value = false)]
pub struct LedgerRow {
    pub id: String,
    pub tenant_id: String,
    pub ticket_id: String,
    pub kind: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub at: NaiveDateTime,
}

/// A ticket being created: its row, its SLA clock, its tags and the event announcing it.
pub struct NewTicket {
    pub row: TicketRow,
    pub sla: SlaRow,
    pub tags: Vec<String>,
    pub event: Outgoing,
}

/// Creates without a transaction of their own (PostgreSQL, no `Idempotency-Key`): their reads
/// ([`ForCreate`]) go together as one query, and their writes as one statement that commits
/// them, each sent by a thread of its own while the creates await it ([`Gather`]).
pub struct Creates {
    reads: Gather<CreateRead, Option<ForCreate>>,
    writes: Gather<NewTicket>,
}

impl Creates {
    /// Creates sent to `db` (their threads start with the first create, on PostgreSQL only).
    pub fn new(db: &Db) -> Self {
        Self {
            reads: Gather::postgres("ticket_create_read", db, read_all),
            writes: Gather::postgres("ticket_create", db, write_all),
        }
    }

    /// What a create in `tenant_id` about `product_id` from a requester at `domain` reads
    /// before it writes ([`ForCreate`]), or `None` if the tenant has no such product. See
    /// [`for_create`] for the number.
    pub async fn read(
        &self,
        tenant_id: &str,
        product_id: &str,
        domain: &str,
    ) -> Result<Option<ForCreate>, StoreError> {
        let read = CreateRead {
            tenant: tenant_id.to_owned(),
            product: product_id.to_owned(),
            domain: domain.to_owned(),
        };
        self.reads.run(read).await
    }

    /// Writes and commits a new ticket ([`insert`]) with whatever other creates' writes wait.
    pub async fn write(&self, new: NewTicket) -> Result<(), StoreError> {
        self.writes.run(new).await
    }

    /// Write statements sent so far, and the creates they carried.
    pub fn counts(&self) -> (u64, u64) {
        self.writes.counts()
    }

    /// Read queries sent so far, and the creates they answered.
    pub fn read_counts(&self) -> (u64, u64) {
        self.reads.counts()
    }
}

/// Writes a new ticket with its SLA clock, its tags and its event. On PostgreSQL they go as
/// one statement: with [`for_create`], a create is two round trips (read, write; begin and
/// commit as well, in a create with an `Idempotency-Key`) where it was eight, each a trip through the network stack and PostgreSQL's executor set-up. Through
/// [`Creates::write`], creates arriving while another's statement runs go together in the
/// next one: a commit, and the executor's set-up over the tickets table's fifteen indexes,
/// for all of them. The ticket's first history entry and its clock's first start are not
/// rows: [`history`] and [`ledger`] read them off the ticket ([`created_entry`],
/// [`start_entry`]).
pub fn insert(conn: &mut DbConn, new: NewTicket) -> QueryResult<()> {
    match conn {
        DbConn::Pg(c) => write_all(c, std::slice::from_ref(&new)).map(drop),
        conn @ DbConn::Sqlite(_) => {
            diesel::insert_into(tickets::table)
                .values(&new.row)
                .execute(conn)?;
            diesel::insert_into(ticket_sla::table)
                .values(&new.sla)
                .execute(conn)?;
            insert_tags(conn, &new.row.tenant_id, &new.row.id, &new.tags)?;
            outbox::insert(conn, &new.event.message())
        }
    }
}

/// The shape of a create's write ([`Fixed`]).
struct CreateWrite;

/// New tickets, their clocks, tags and events as one statement of one shape however many
/// (each table's rows as arrays, [`Unnest`]).
fn write_all(c: &mut diesel::PgConnection, new: &[NewTicket]) -> QueryResult<Vec<()>> {
    let tags: Vec<(&str, &str, &str)> = new
        .iter()
        .flat_map(|t| {
            t.tags
                .iter()
                .map(|tag| (t.row.tenant_id.as_str(), tag.as_str(), t.row.id.as_str()))
        })
        .collect();
    let messages: Vec<NewMessage<'_>> = new.iter().map(|t| t.event.message()).collect();
    let tickets = Unnest::into("tickets")
        .text("id", new, |t| &t.row.id)
        .text("tenant_id", new, |t| &t.row.tenant_id)
        .text("key", new, |t| &t.row.key)
        .text("product_id", new, |t| &t.row.product_id)
        .text("title", new, |t| &t.row.title)
        .text("description", new, |t| &t.row.description)
        .text("requester_name", new, |t| &t.row.requester_name)
        .text("requester_email", new, |t| &t.row.requester_email)
        .text("channel", new, |t| &t.row.channel)
        .text("ticket_type", new, |t| &t.row.ticket_type)
        .text("tags", new, |t| &t.row.tags)
        .text("status", new, |t| &t.row.status)
        .text("triage", new, |t| &t.row.triage)
        .text("created_by", new, |t| &t.row.created_by)
        .opt_text("company_id", new, |t| t.row.company_id.as_deref())
        .opt_text("assignee_id", new, |t| t.row.assignee_id.as_deref())
        .opt_text("escalated_to", new, |t| t.row.escalated_to.as_deref())
        .opt_text("deleted_by", new, |t| t.row.deleted_by.as_deref())
        .big("number", new, |t| t.row.number)
        .big("version", new, |t| t.row.version)
        .int("severity_rank", new, |t| t.row.severity_rank)
        .int("severity_overridden", new, |t| t.row.severity_overridden)
        .int("escalation_level", new, |t| t.row.escalation_level)
        .int("comments_count", new, |t| t.row.comments_count)
        .ts("created_at", new, |t| t.row.created_at)
        .ts("updated_at", new, |t| t.row.updated_at)
        .opt_ts("first_response_at", new, |t| t.row.first_response_at)
        .opt_ts("resolved_at", new, |t| t.row.resolved_at)
        .opt_ts("closed_at", new, |t| t.row.closed_at)
        .opt_ts("sla_due_at", new, |t| t.row.sla_due_at)
        .opt_ts("deleted_at", new, |t| t.row.deleted_at);
    let clocks = Unnest::into("ticket_sla")
        .text("ticket_id", new, |t| &t.sla.ticket_id)
        .text("tenant_id", new, |t| &t.sla.tenant_id)
        .big("elapsed_seconds", new, |t| t.sla.elapsed_seconds)
        .big("paused_seconds", new, |t| t.sla.paused_seconds)
        .opt_big("first_response_seconds", new, |t| {
            t.sla.first_response_seconds
        })
        .opt_big("resolution_seconds", new, |t| t.sla.resolution_seconds)
        .opt_ts("running_since", new, |t| t.sla.running_since)
        .opt_ts("paused_since", new, |t| t.sla.paused_since)
        .opt_ts("first_response_due_at", new, |t| {
            t.sla.first_response_due_at
        })
        .opt_ts("resolution_due_at", new, |t| t.sla.resolution_due_at)
        .opt_ts("first_response_breached_at", new, |t| {
            t.sla.first_response_breached_at
        })
        .opt_ts("resolution_breached_at", new, |t| {
            t.sla.resolution_breached_at
        });
    let tag_rows = Unnest::into("ticket_tags")
        .text("tenant_id", &tags, |t| t.0)
        .text("tag", &tags, |t| t.1)
        .text("ticket_id", &tags, |t| t.2);
    let writes = Together::new()
        .and(tickets)
        .and(clocks)
        .and(tag_rows)
        .and(outbox::insertions(&messages));
    let written = Fixed::<CreateWrite>::new(writes, "seq").load::<i64>(c)?;
    if written.len() != new.len() {
        return Err(diesel::result::Error::QueryBuilderError(
            format!("{} tickets written of {}", written.len(), new.len()).into(),
        ));
    }
    Ok(vec![(); new.len()])
}

/// A ticket's first history entry, `created` (to its key, by its creator, when it was
/// created), read off the ticket: a create writes two rows fewer, and every ticket has it,
/// however it came into the table. Its id is the ticket's.
pub fn created_entry(ticket: &TicketRow) -> HistoryRow {
    HistoryRow {
        id: ticket.id.clone(),
        tenant_id: ticket.tenant_id.clone(),
        ticket_id: ticket.id.clone(),
        actor: ticket.created_by.clone(),
        field: "created".into(),
        from_value: None,
        to_value: Some(ticket.key.clone()),
        note: None,
        at: ticket.created_at,
    }
}

/// The first entry of a ticket's SLA ledger: its clock started when the ticket was created,
/// at the severity triage gave it (read as the create read it, the default for one it could
/// not; no detail for a ticket without a triage result). Its id is the ticket's.
pub fn start_entry(ticket: &TicketRow) -> LedgerRow {
    #[derive(serde::Deserialize)]
    struct Triaged {
        severity: String,
    }
    let severity = serde_json::from_str::<Triaged>(&ticket.triage)
        .ok()
        .map(|t| Severity::parse(&t.severity).unwrap_or(Severity::DEFAULT));
    LedgerRow {
        id: ticket.id.clone(),
        tenant_id: ticket.tenant_id.clone(),
        ticket_id: ticket.id.clone(),
        kind: Mark::Start.as_str().into(),
        target: None,
        detail: severity.map(|s| format!("severity {s}")),
        at: ticket.created_at,
    }
}

/// What a create reads before it writes: the product, the company owning the requester's
/// email domain (if any) and the tenant's next ticket number.
pub type ForCreate = (ProductRow, Option<String>, i64);

/// One create's read: the tenant, the product and the requester's email domain.
pub struct CreateRead {
    tenant: String,
    product: String,
    domain: String,
}

/// What a create reads before it writes ([`ForCreate`]), or `None` if the tenant has no such
/// product. One query on PostgreSQL ([`read_all`]), which [`Creates::read`] shares among the
/// creates that arrive while another's runs: under load, a round trip and an executor
/// start-up for several.
///
/// On PostgreSQL the number comes from the tenant's own sequence (migration `ticket_number`,
/// made on the tenant's first ticket): `nextval` holds no lock until commit, so creates commit
/// in parallel; it is drawn only when the product exists, and a create that then fails leaves
/// a gap. On SQLite (one writer at a time anyway) a counter row in the create's transaction
/// keeps the numbers without gaps.
pub fn for_create(
    conn: &mut DbConn,
    tenant_id: &str,
    product_id: &str,
    domain: &str,
) -> QueryResult<Option<ForCreate>> {
    match conn {
        DbConn::Pg(c) => {
            let read = CreateRead {
                tenant: tenant_id.to_owned(),
                product: product_id.to_owned(),
                domain: domain.to_owned(),
            };
            Ok(read_all(c, std::slice::from_ref(&read))?.remove(0))
        }
        DbConn::Sqlite(c) => {
            // SQLite has one writer at a time: a counter row is enough. Drawn first, it is
            // rolled back with the create if the product is missing.
            let number = diesel::insert_into(ticket_counters::table)
                .values((
                    ticket_counters::tenant_id.eq(tenant_id),
                    ticket_counters::last_number.eq(1),
                ))
                .on_conflict(ticket_counters::tenant_id)
                .do_update()
                .set(ticket_counters::last_number.eq(ticket_counters::last_number + 1))
                .returning(ticket_counters::last_number)
                .get_result(c)?;
            let Some(product) = super::products::find(conn, tenant_id, product_id)? else {
                return Ok(None);
            };
            let owner = super::companies::owner_of_domain(conn, tenant_id, domain)?;
            Ok(Some((product, owner, number)))
        }
    }
}

/// The reads of several creates, answered in order.
fn read_all(
    c: &mut diesel::PgConnection,
    reads: &[CreateRead],
) -> QueryResult<Vec<Option<ForCreate>>> {
    let query = ReadsForCreate {
        tenants: reads.iter().map(|r| r.tenant.as_str()).collect(),
        products: reads.iter().map(|r| r.product.as_str()).collect(),
        domains: reads.iter().map(|r| r.domain.as_str()).collect(),
    };
    let mut answers: Vec<Option<ForCreate>> = reads.iter().map(|_| None).collect();
    for (i, product, owner, number) in query.load::<(i64, ProductRow, Option<String>, i64)>(c)? {
        // `WITH ORDINALITY` counts from 1.
        if let Some(answer) = usize::try_from(i - 1).ok().and_then(|i| answers.get_mut(i)) {
            *answer = Some((product, owner, number));
        }
    }
    Ok(answers)
}

/// The query of [`read_all`]: the reads as arrays, so its text is the same however many
/// (and PostgreSQL keeps its plan), each answered with its position.
struct ReadsForCreate<'a> {
    tenants: Vec<&'a str>,
    products: Vec<&'a str>,
    domains: Vec<&'a str>,
}

/// The one shape of [`ReadsForCreate`], which names its prepared statement.
struct ReadsForCreateShape;

impl diesel::query_builder::QueryId for ReadsForCreate<'_> {
    type QueryId = ReadsForCreateShape;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for ReadsForCreate<'_> {
    type SqlType = (
        BigInt,
        products::SqlType,
        diesel::sql_types::Nullable<Text>,
        BigInt,
    );
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for ReadsForCreate<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::Array;
        out.push_sql("SELECT r.i, ");
        products::all_columns.walk_ast(out.reborrow())?;
        out.push_sql(
            ", (SELECT d.company_id FROM company_domains d \
             WHERE d.tenant_id = r.t AND d.domain = r.d LIMIT 1), ticket_number(r.t) \
             FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.tenants)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.products)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.domains)?;
        out.push_sql(
            ") WITH ORDINALITY AS r(t, p, d, i) \
             JOIN products ON products.tenant_id = r.t AND products.id = r.p",
        );
        Ok(())
    }
}

impl RunQueryDsl<diesel::PgConnection> for ReadsForCreate<'_> {}

/// Replaces a ticket's tags in the tag index.
pub fn set_tags(
    conn: &mut DbConn,
    tenant_id: &str,
    ticket_id: &str,
    tags: &[String],
) -> QueryResult<()> {
    diesel::delete(ticket_tags::table.filter(ticket_tags::ticket_id.eq(ticket_id)))
        .execute(conn)?;
    insert_tags(conn, tenant_id, ticket_id, tags)
}

// One statement for all of a ticket's tags on PostgreSQL.
fn insert_tags(
    conn: &mut DbConn,
    tenant_id: &str,
    ticket_id: &str,
    tags: &[String],
) -> QueryResult<()> {
    if tags.is_empty() {
        return Ok(());
    }
    let row = |t| {
        (
            ticket_tags::tenant_id.eq(tenant_id),
            ticket_tags::tag.eq(t),
            ticket_tags::ticket_id.eq(ticket_id),
        )
    };
    match conn {
        DbConn::Pg(c) => diesel::insert_into(ticket_tags::table)
            .values(tags.iter().map(row).collect::<Vec<_>>())
            .execute(c)
            .map(drop),
        // SQLite: one writer, no round trips; a statement per row costs nothing.
        DbConn::Sqlite(_) => tags.iter().try_for_each(|t| {
            diesel::insert_into(ticket_tags::table)
                .values(row(t))
                .execute(conn)
                .map(drop)
        }),
    }
}

/// A live ticket by id or key.
pub fn find(
    conn: &mut DbConn,
    tenant_id: &str,
    id_or_key: &str,
    by_key: bool,
) -> QueryResult<Option<TicketRow>> {
    let q = tickets::table
        .filter(tickets::tenant_id.eq(tenant_id))
        .filter(tickets::deleted_at.is_null())
        .into_boxed();
    let q = if by_key {
        q.filter(tickets::key.eq(id_or_key))
    } else {
        q.filter(tickets::id.eq(id_or_key))
    };
    q.first(conn).optional()
}

/// Locks a ticket's row until the transaction ends, so concurrent changes of one ticket
/// (requests, the breach scheduler) queue instead of failing on the version check. SQLite's
/// write transactions are serial already.
pub fn lock(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    if conn.backend() == Backend::Postgres {
        diesel::sql_query("SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE")
            .bind::<Text, _>(id)
            .execute(conn)?;
    }
    Ok(())
}

pub fn sla(conn: &mut DbConn, ticket_id: &str) -> QueryResult<SlaRow> {
    ticket_sla::table.find(ticket_id).first(conn)
}

pub fn save_sla(conn: &mut DbConn, row: &SlaRow) -> QueryResult<()> {
    diesel::update(ticket_sla::table.find(&row.ticket_id))
        .set(row)
        .execute(conn)
        .map(drop)
}

/// Writes `changes` if the version is still `expected`; false when it moved on.
pub fn update(
    conn: &mut DbConn,
    id: &str,
    expected: i64,
    changes: &TicketChanges,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        tickets::table
            .filter(tickets::id.eq(id))
            .filter(tickets::version.eq(expected)),
    )
    .set((
        changes,
        tickets::version.eq(expected + 1),
        tickets::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Who is assigned in `GET /tickets?assigneeId=`.
#[derive(Debug, Clone)]
pub enum AssigneeFilter {
    Nobody,
    User(String),
}

/// The filters of `GET /tickets`.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub product_id: Option<String>,
    pub statuses: Vec<String>,
    pub severity_rank: Option<i32>,
    pub ticket_type: Option<String>,
    pub assignee: Option<AssigneeFilter>,
    pub channel: Option<String>,
    pub company_id: Option<String>,
    pub tag: Option<String>,
    pub requester_email: Option<String>,
    /// Text, and whether internal notes may match.
    pub q: Option<(String, bool)>,
    pub created_from: Option<NaiveDateTime>,
    pub created_to: Option<NaiveDateTime>,
    pub updated_since: Option<NaiveDateTime>,
}

/// The orders of `GET /tickets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
    Severity,
    SlaDue,
}

fn filtered<'a>(
    backend: Backend,
    tenant_id: &'a str,
    f: &'a TicketFilter,
) -> tickets::BoxedQuery<'a, MultiBackend> {
    let mut q = tickets::table
        .filter(tickets::tenant_id.eq(tenant_id))
        .filter(tickets::deleted_at.is_null())
        .into_boxed();
    if let Some(p) = &f.product_id {
        q = q.filter(tickets::product_id.eq(p));
    }
    // One status as `=`, not `= ANY(array)`: PostgreSQL (before 17) reads a btree in order
    // only for an equality, so `status = 'open'` newest first is a walk down the status index
    // while `= ANY('{open}')` walks every ticket newest first looking for open ones.
    match f.statuses.as_slice() {
        [] => {}
        [one] => q = q.filter(tickets::status.eq(one)),
        many => q = q.filter(tickets::status.eq_any(many)),
    }
    if let Some(r) = f.severity_rank {
        q = q.filter(tickets::severity_rank.eq(r));
    }
    if let Some(t) = &f.ticket_type {
        q = q.filter(tickets::ticket_type.eq(t));
    }
    match &f.assignee {
        Some(AssigneeFilter::Nobody) => q = q.filter(tickets::assignee_id.is_null()),
        Some(AssigneeFilter::User(u)) => q = q.filter(tickets::assignee_id.eq(u)),
        None => {}
    }
    if let Some(c) = &f.channel {
        q = q.filter(tickets::channel.eq(c));
    }
    if let Some(c) = &f.company_id {
        q = q.filter(tickets::company_id.eq(c));
    }
    if let Some(e) = &f.requester_email {
        q = q.filter(tickets::requester_email.eq(e));
    }
    if let Some(t) = &f.tag {
        let tagged = ticket_tags::table
            .filter(ticket_tags::tenant_id.eq(tenant_id))
            .filter(ticket_tags::tag.eq(t))
            .select(ticket_tags::ticket_id);
        q = q.filter(tickets::id.eq_any(tagged));
    }
    if let Some(from) = f.created_from {
        q = q.filter(tickets::created_at.ge(from));
    }
    if let Some(to) = f.created_to {
        q = q.filter(tickets::created_at.lt(to));
    }
    if let Some(since) = f.updated_since {
        q = q.filter(tickets::updated_at.ge(since));
    }
    if let Some((text, internal)) = &f.q
        && let Some(cond) = search::matching(backend, tenant_id, text, *internal)
    {
        q = q.filter(cond);
    }
    q
}

/// How a search on PostgreSQL chooses its path (see [`list`]). Not settings: tests change
/// them to reach every path with a few tickets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchTuning {
    /// Tickets looked through, newest first in the list's order, before the text indexes.
    /// 1,000 cost about 1.5 ms to look through at a million tickets and hold a first page
    /// of any word in more than 2 % of them.
    pub window: i64,
    /// The most matches PostgreSQL may expect for a word to be looked up through the text
    /// indexes however many tickets there are (above it, and above 0.6 % of the tickets,
    /// the list is walked in order).
    pub few_matches: f64,
}

impl Default for SearchTuning {
    fn default() -> Self {
        Self {
            window: 1_000,
            few_matches: 1_000.0,
        }
    }
}

/// A page of tickets and how many match.
#[derive(Debug)]
pub struct Listed {
    pub rows: Vec<TicketRow>,
    /// Matches counted, at most the cap the caller gave.
    pub counted: i64,
    /// Whether more may match than `counted` even though it is below the cap (a search
    /// counted only among the newest tickets, see [`list`]).
    pub at_least: bool,
}

/// How many first windows wide a search's second window may be ([`list`]).
const WIDEST: i64 = 10;

/// One page of tickets and how many match, counted up to `count_cap` (a million matches
/// would cost far more to count than the page does to find).
///
/// A text search on PostgreSQL first looks among the first `window` tickets of the list in
/// its order (the filters other than `q` applied): when they hold the page, the page comes
/// from them and the count is theirs (a lower bound when the list is longer). PostgreSQL
/// cannot tell a word that matches one ticket from one that matches thousands (a word it has
/// no statistics for is guessed at 0.5 %), so without this it walks the whole list in order
/// looking for a rare word's matches. When the window holds some matches but not the page,
/// it looks once more, among as many tickets as should hold the page at the rate the matches
/// came (at most [`WIDEST`] windows). When no window holds the page, a word
/// PostgreSQL expects to match few tickets is found through the text indexes (bitmap scans)
/// and its matches sorted; one it knows to be common is left to its own plan.
#[allow(clippy::too_many_arguments)]
pub fn list(
    conn: &mut DbConn,
    tenant_id: &str,
    filter: &TicketFilter,
    order: (SortKey, bool),
    offset: i64,
    limit: i64,
    count_cap: i64,
    tuning: SearchTuning,
) -> QueryResult<Listed> {
    let backend = conn.backend();
    if backend == Backend::Postgres
        && let Some((text, internal)) = &filter.q
    {
        let base = TicketFilter {
            q: None,
            ..filter.clone()
        };
        let whole_tenant = unfiltered(&base);
        let wanted = offset + limit;
        let first = tuning.window.max(2 * wanted);
        // Every column, `search` too, for the condition outside the window.
        let newest = |window: i64| {
            ordered(filtered(backend, tenant_id, &base), order)
                .select(diesel::dsl::sql::<diesel::sql_types::Integer>("tickets.*"))
                .limit(window)
        };
        let matching = || search::matching(backend, tenant_id, text, *internal);
        let mut window = first;
        while let Some(cond) = matching() {
            let (seen, matched) =
                PreparedIf(whole_tenant, search::WindowStats::new(newest(window), cond))
                    .get_result::<(i64, i64)>(conn)?;
            let whole_list = seen < window;
            if whole_list || matched >= wanted {
                let rows = match matching() {
                    Some(cond) => PreparedIf(
                        whole_tenant,
                        search::WindowPage::new(
                            newest(window),
                            cond,
                            order_sql(order),
                            offset,
                            limit,
                        ),
                    )
                    .load(conn)?,
                    None => Vec::new(),
                };
                return Ok(Listed {
                    rows,
                    counted: matched.min(count_cap),
                    at_least: !whole_list,
                });
            }
            // Some matches, short of the page: once, a window wide enough at the rate they
            // came (half as wide again), unless that is past [`WIDEST`] first windows. Two
            // common words that meet in one ticket in 55 fill a first page from 1,580 of a
            // million tickets: 19 ms at the median under load, where walking the list in
            // order and counting the matches took 29. (In i128: a far page's product of
            // offset and window is past i64.)
            let (w, m) = (i128::from(window), i128::from(matched.max(1)));
            let wider = (i128::from(wanted) * w * 3).div_euclid(2 * m) + 1;
            if window != first || matched == 0 || wider > i128::from(WIDEST) * w {
                break;
            }
            window = i64::try_from(wider).unwrap_or(i64::MAX);
        }
        if matching().is_some() {
            // Not in the window: a word PostgreSQL knows to be common (an old one, say) is
            // left to its own plan.
            if !search::few_expected(conn, text, tuning.few_matches)? {
                return plain(conn, tenant_id, filter, order, offset, limit, count_cap);
            }
            return fleetdesk_store::transaction(conn, |conn| {
                search::prefer_bitmaps(conn)?;
                let ids = search::comment_matches(conn, tenant_id, text, *internal)?;
                let query = || {
                    filtered(backend, tenant_id, &base)
                        .filter(search::matching_sparse(tenant_id, text, *internal, &ids))
                };
                page_and_count(conn, query, order, offset, limit, count_cap, false)
            });
        }
    }
    plain(conn, tenant_id, filter, order, offset, limit, count_cap)
}

/// The page and count as PostgreSQL (or SQLite) plans them.
fn plain(
    conn: &mut DbConn,
    tenant_id: &str,
    filter: &TicketFilter,
    order: (SortKey, bool),
    offset: i64,
    limit: i64,
    count_cap: i64,
) -> QueryResult<Listed> {
    let backend = conn.backend();
    let query = || filtered(backend, tenant_id, filter);
    let keep = backend == Backend::Postgres && unfiltered(filter);
    page_and_count(conn, query, order, offset, limit, count_cap, keep)
}

/// Whether a list is the tenant's whole list (no filter at all): its queries' best plans
/// are the same whoever asks (down an index in list order, stopping at the page or the
/// count's cap; the same for a tenant of ten tickets or of a million), so they are kept
/// prepared, and PostgreSQL's plan for them is kept too after a few runs. Planning and
/// parsing them anew was half of PostgreSQL's time for such a list. Any filter may change
/// the best plan with its value (a rare status, a big product), so those stay [`Planned`].
fn unfiltered(f: &TicketFilter) -> bool {
    let TicketFilter {
        product_id,
        statuses,
        severity_rank,
        ticket_type,
        assignee,
        channel,
        company_id,
        tag,
        requester_email,
        q,
        created_from,
        created_to,
        updated_since,
    } = f;
    product_id.is_none()
        && statuses.is_empty()
        && severity_rank.is_none()
        && ticket_type.is_none()
        && assignee.is_none()
        && channel.is_none()
        && company_id.is_none()
        && tag.is_none()
        && requester_email.is_none()
        && q.is_none()
        && created_from.is_none()
        && created_to.is_none()
        && updated_since.is_none()
}

/// A page of `query` in `order` and its rows counted up to `count_cap`; `keep`: both
/// queries kept prepared (see [`unfiltered`]).
fn page_and_count<'a>(
    conn: &mut DbConn,
    query: impl Fn() -> tickets::BoxedQuery<'a, MultiBackend>,
    order: (SortKey, bool),
    offset: i64,
    limit: i64,
    count_cap: i64,
    keep: bool,
) -> QueryResult<Listed> {
    // The whole list is counted newest first, whatever its order: an index-only scan of the
    // first `count_cap` entries down the end of the created index, where a default list's
    // page was just read. Unordered, PostgreSQL counted them with a scan from the start of
    // the table; at a million tickets, after deletes, a vacuum and the breach scheduler's
    // updates, that took 2-3 times as long at the median and 3-5 times at p99.
    let counted_rows = if keep {
        ordered(query(), (SortKey::CreatedAt, true))
    } else {
        query()
    };
    let counted = PreparedIf(
        keep,
        CountRows::of(
            counted_rows
                .select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
                .limit(count_cap),
        ),
    )
    .get_result::<i64>(conn)?;
    let rows = PreparedIf(keep, ordered(query(), order).offset(offset).limit(limit)).load(conn)?;
    Ok(Listed {
        rows,
        counted,
        at_least: false,
    })
}

/// `q` in the order asked for. [`order_sql`] says the same in SQL.
fn ordered<'a>(
    q: tickets::BoxedQuery<'a, MultiBackend>,
    (sort, descending): (SortKey, bool),
) -> tickets::BoxedQuery<'a, MultiBackend> {
    match (sort, descending) {
        (SortKey::CreatedAt, false) => q.order((tickets::created_at.asc(), tickets::id.asc())),
        (SortKey::CreatedAt, true) => q.order((tickets::created_at.desc(), tickets::id.desc())),
        (SortKey::UpdatedAt, false) => q.order((tickets::updated_at.asc(), tickets::id.asc())),
        (SortKey::UpdatedAt, true) => q.order((tickets::updated_at.desc(), tickets::id.desc())),
        // Ascending severity is the most severe first (P0 before P4).
        (SortKey::Severity, false) => q.order((
            tickets::severity_rank.asc(),
            tickets::created_at.asc(),
            tickets::id.asc(),
        )),
        (SortKey::Severity, true) => q.order((
            tickets::severity_rank.desc(),
            tickets::created_at.desc(),
            tickets::id.desc(),
        )),
        // Tickets without a running due time sort after every due one, either way.
        (SortKey::SlaDue, false) => q.order((
            tickets::sla_due_at.is_null().asc(),
            tickets::sla_due_at.asc(),
            tickets::id.asc(),
        )),
        (SortKey::SlaDue, true) => q.order((
            tickets::sla_due_at.is_null().asc(),
            tickets::sla_due_at.desc(),
            tickets::id.desc(),
        )),
    }
}

/// The `ORDER BY` of [`ordered`], for a query over a subquery named `tickets`.
fn order_sql((sort, descending): (SortKey, bool)) -> &'static str {
    match (sort, descending) {
        (SortKey::CreatedAt, false) => "tickets.created_at ASC, tickets.id ASC",
        (SortKey::CreatedAt, true) => "tickets.created_at DESC, tickets.id DESC",
        (SortKey::UpdatedAt, false) => "tickets.updated_at ASC, tickets.id ASC",
        (SortKey::UpdatedAt, true) => "tickets.updated_at DESC, tickets.id DESC",
        (SortKey::Severity, false) => {
            "tickets.severity_rank ASC, tickets.created_at ASC, tickets.id ASC"
        }
        (SortKey::Severity, true) => {
            "tickets.severity_rank DESC, tickets.created_at DESC, tickets.id DESC"
        }
        (SortKey::SlaDue, false) => {
            "(tickets.sla_due_at IS NULL) ASC, tickets.sla_due_at ASC, tickets.id ASC"
        }
        (SortKey::SlaDue, true) => {
            "(tickets.sla_due_at IS NULL) ASC, tickets.sla_due_at DESC, tickets.id DESC"
        }
    }
}

pub fn insert_comment(conn: &mut DbConn, row: &CommentRow) -> QueryResult<()> {
    diesel::insert_into(ticket_comments::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// A page of a ticket's comments, oldest first; internal notes only when `internal`.
pub fn comments(
    conn: &mut DbConn,
    ticket_id: &str,
    internal: bool,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<CommentRow>, i64)> {
    let base = || {
        let mut q = ticket_comments::table
            .filter(ticket_comments::ticket_id.eq(ticket_id))
            .into_boxed::<MultiBackend>();
        if !internal {
            q = q.filter(ticket_comments::visibility.eq("public"));
        }
        q
    };
    let total = base().count().get_result(conn)?;
    let rows = base()
        .order((ticket_comments::created_at.asc(), ticket_comments::id.asc()))
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    Ok((rows, total))
}

pub fn insert_history(conn: &mut DbConn, rows: &[HistoryRow]) -> QueryResult<()> {
    for row in rows {
        diesel::insert_into(ticket_history::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// A page of a ticket's history, oldest first: its [`created_entry`], then the stored
/// changes, and how many there are in all.
pub fn history(
    conn: &mut DbConn,
    ticket: &TicketRow,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<HistoryRow>, i64)> {
    let stored: i64 = ticket_history::table
        .filter(ticket_history::ticket_id.eq(&ticket.id))
        .count()
        .get_result(conn)?;
    // The created entry is the first of the whole history.
    let mut rows = Vec::new();
    let (skip, take) = if offset == 0 {
        rows.push(created_entry(ticket));
        (0, limit - 1)
    } else {
        (offset - 1, limit)
    };
    if take > 0 && skip < stored {
        rows.extend(
            ticket_history::table
                .filter(ticket_history::ticket_id.eq(&ticket.id))
                .order((ticket_history::at.asc(), ticket_history::id.asc()))
                .offset(skip)
                .limit(take)
                .load::<HistoryRow>(conn)?,
        );
    }
    Ok((rows, stored + 1))
}

pub fn insert_ledger(conn: &mut DbConn, row: &LedgerRow) -> QueryResult<()> {
    diesel::insert_into(sla_ledger::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// A ticket's whole SLA ledger, oldest first (at most a few entries per status change): its
/// [`start_entry`], then the stored entries.
pub fn ledger(conn: &mut DbConn, ticket: &TicketRow) -> QueryResult<Vec<LedgerRow>> {
    let mut entries = vec![start_entry(ticket)];
    entries.extend(
        sla_ledger::table
            .filter(sla_ledger::ticket_id.eq(&ticket.id))
            .order((sla_ledger::at.asc(), sla_ledger::id.asc()))
            .limit(10_000)
            .load::<LedgerRow>(conn)?,
    );
    Ok(entries)
}

/// Live tickets whose earliest open target is due by `now`, oldest due first, across
/// tenants: the breach scheduler's work.
pub fn due(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<String>> {
    tickets::table
        .filter(tickets::sla_due_at.le(now))
        .filter(tickets::deleted_at.is_null())
        .order(tickets::sla_due_at.asc())
        .select(tickets::id)
        .limit(limit)
        .load(conn)
}

/// A live ticket by id in any tenant (for the scheduler).
pub fn find_any(conn: &mut DbConn, id: &str) -> QueryResult<Option<TicketRow>> {
    tickets::table
        .filter(tickets::id.eq(id))
        .filter(tickets::deleted_at.is_null())
        .first(conn)
        .optional()
}

/// What the statistics cover: a tenant's live tickets created in a period, optionally of one
/// product.
#[derive(Debug, Clone)]
pub struct StatsScope {
    pub tenant_id: String,
    pub product_id: Option<String>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
}

/// Narrows a boxed query over `tickets` to a [`StatsScope`]: the list's `filtered` boxes
/// `tickets` alone, and these queries join `ticket_sla`.
macro_rules! in_scope {
    ($query:expr, $scope:expr) => {{
        let scope: &StatsScope = $scope;
        let mut q = $query
            .filter(tickets::tenant_id.eq(scope.tenant_id.clone()))
            .filter(tickets::deleted_at.is_null());
        if let Some(p) = &scope.product_id {
            q = q.filter(tickets::product_id.eq(p.clone()));
        }
        if let Some(f) = scope.from {
            q = q.filter(tickets::created_at.ge(f));
        }
        if let Some(t) = scope.to {
            q = q.filter(tickets::created_at.lt(t));
        }
        q
    }};
}

/// The tickets of one status, severity, type and channel in a [`StatsScope`], counted.
#[derive(Debug, Clone, Queryable)]
pub struct StatsGroup {
    pub status: String,
    pub severity_rank: i32,
    pub ticket_type: String,
    pub channel: String,
    pub tickets: i64,
    /// Whose triaged severity an agent overrode.
    pub overridden: i64,
    /// That have had a first public agent reply.
    pub responded: i64,
    /// That have been resolved.
    pub resolved: i64,
    /// Whose SLA outcome is known: resolved, or breached.
    pub decided: i64,
    /// That breached a target.
    pub breached: i64,
}

const BREACHED: &str = "ticket_sla.first_response_breached_at IS NOT NULL OR ticket_sla.resolution_breached_at IS NOT NULL";

/// Prepares a statistics transaction (PostgreSQL): no JIT compilation of its queries. For a
/// day's tickets among a million, compiling the grouped count added about 30 ms to its 220,
/// and each statement compiles afresh.
pub fn prepare_for_stats(conn: &mut DbConn) -> QueryResult<()> {
    match conn.backend() {
        Backend::Postgres => {
            diesel::connection::SimpleConnection::batch_execute(conn, "SET LOCAL jit = off")
        }
        Backend::Sqlite => Ok(()),
    }
}

/// The scope's tickets counted by status, severity, type and channel: a few dozen rows
/// however many tickets there are.
pub fn stats_groups(conn: &mut DbConn, scope: &StatsScope) -> QueryResult<Vec<StatsGroup>> {
    use diesel::dsl::{count, count_star, sql};
    let grouped = tickets::table
        .inner_join(ticket_sla::table)
        .group_by((
            tickets::status,
            tickets::severity_rank,
            tickets::ticket_type,
            tickets::channel,
        ))
        .select((
            tickets::status,
            tickets::severity_rank,
            tickets::ticket_type,
            tickets::channel,
            count_star(),
            sql::<BigInt>("COUNT(CASE WHEN tickets.severity_overridden <> 0 THEN 1 END)"),
            count(ticket_sla::first_response_seconds),
            count(ticket_sla::resolution_seconds),
            sql::<BigInt>(&format!(
                "COUNT(CASE WHEN {BREACHED} OR tickets.resolved_at IS NOT NULL THEN 1 END)"
            )),
            sql::<BigInt>(&format!("COUNT(CASE WHEN {BREACHED} THEN 1 END)")),
        ))
        // A grouped query is boxed once its selection is set.
        .into_boxed::<MultiBackend>();
    Planned(in_scope!(grouped, scope)).load(conn)
}

/// The median time to first response (or, with `resolution`, to resolution) of the scope's
/// `n` tickets that have one, in whole seconds (the mean of the middle two for an even `n`):
/// the middle of the sorted times, read in SQL.
pub fn median_seconds(
    conn: &mut DbConn,
    scope: &StatsScope,
    resolution: bool,
    n: i64,
) -> QueryResult<Option<i64>> {
    if n <= 0 {
        return Ok(None);
    }
    let (offset, limit) = ((n - 1) / 2, 2 - n % 2);
    let q = in_scope!(
        tickets::table
            .inner_join(ticket_sla::table)
            .into_boxed::<MultiBackend>(),
        scope
    );
    macro_rules! middle_of {
        ($seconds:expr) => {
            Planned(
                q.filter($seconds.is_not_null())
                    .select($seconds.assume_not_null())
                    .order($seconds.asc())
                    .offset(offset)
                    .limit(limit),
            )
            .load::<i64>(conn)?
        };
    }
    let middle = if resolution {
        middle_of!(ticket_sla::resolution_seconds)
    } else {
        middle_of!(ticket_sla::first_response_seconds)
    };
    Ok(match middle[..] {
        [m] => Some(m),
        [a, b] => Some((a + b) / 2),
        _ => None,
    })
}
