//! Credentials in the node's PostgreSQL schema (`tb_credentials`, migration 4 of
//! log/pg_engine/schema.rs): one row for the operator (`uscc` null) and one per agency.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{CredentialError, Stored, StoredAgency, storage_error};
use crate::log::PgDatabase;

/// Everything stored; an error if the operator's row is missing (nothing was imported).
pub(super) fn read(db: &Arc<PgDatabase>) -> Result<Stored, CredentialError> {
    let rows = db
        .session()
        .and_then(|s| s.query("SELECT uscc, name, token_hash FROM tb_credentials", &[]))
        .map_err(storage_error)?;
    let mut operator = None;
    let mut agencies = BTreeMap::new();
    for row in &rows {
        match row.get::<_, Option<String>>(0) {
            None => operator = Some(row.get(2)),
            Some(uscc) => {
                let agency = StoredAgency {
                    name: row.get(1),
                    token_hash: row.get(2),
                };
                agencies.insert(uscc, agency);
            }
        }
    }
    let operator = operator.ok_or_else(|| {
        CredentialError::Storage(
            "the database holds no operator token: start the node once with the \
             credentials.json that init wrote"
                .into(),
        )
    })?;
    Ok(Stored { operator, agencies })
}

/// Adds `agency`: [`CredentialError::Exists`] if the database holds the USCC already (another
/// process registered it).
pub(super) fn register(
    db: &Arc<PgDatabase>,
    uscc: &str,
    agency: &StoredAgency,
) -> Result<(), CredentialError> {
    let added = db
        .session()
        .and_then(|s| {
            s.query(
                "INSERT INTO tb_credentials (uscc, name, token_hash) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING RETURNING uscc",
                &[&uscc, &agency.name, &agency.token_hash],
            )
        })
        .map_err(storage_error)?;
    match added.is_empty() {
        true => Err(CredentialError::Exists(uscc.to_owned())),
        false => Ok(()),
    }
}

/// Adds what `stored` holds that the database does not, in one transaction; refused if the
/// database's operator token differs (a `credentials.json` of another node, or a stale copy).
/// Repeating it changes nothing.
pub(super) fn import(db: &Arc<PgDatabase>, stored: &Stored) -> Result<(), CredentialError> {
    let mut session = db.session().map_err(storage_error)?;
    session
        .begin_locked(&["credentials-import"])
        .map_err(storage_error)?;
    let held = session
        .query(
            "SELECT token_hash FROM tb_credentials WHERE uscc IS NULL",
            &[],
        )
        .map_err(storage_error)?;
    match held.first().map(|r| r.get::<_, String>(0)) {
        Some(operator) if operator != stored.operator => {
            return Err(CredentialError::Storage(
                "credentials.json names another operator token than the database: not imported \
                 (move it away once you have checked which is current)"
                    .into(),
            ));
        }
        Some(_) => {}
        None => {
            session
                .query(
                    "INSERT INTO tb_credentials (uscc, name, token_hash) VALUES (NULL, '', $1)",
                    &[&stored.operator],
                )
                .map_err(storage_error)?;
        }
    }
    for (uscc, agency) in &stored.agencies {
        session
            .query(
                "INSERT INTO tb_credentials (uscc, name, token_hash) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[uscc, &agency.name, &agency.token_hash],
            )
            .map_err(storage_error)?;
    }
    session.commit().map_err(storage_error)
}
