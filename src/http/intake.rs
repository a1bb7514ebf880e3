//! Group commit for deliveries. Each delivery waits in a queue; a writer takes everything that
//! queued while it wrote the last batch and writes it in one transaction (payments, fee lines,
//! allocations, audit records, archived deliveries). Under load, batches grow and the cost per
//! delivery falls; when idle, a delivery is written at once, alone.
//!
//! Schools are spread over a few writers (by school id), so one school's burst never waits on
//! another's commit. Exactly-once does not depend on this queue: it comes from the database,
//! under each school's ledger lock, so any number of instances can share one PostgreSQL.

use super::webhooks::{settle, Handled, ToRecord};
use crate::error::Error;
use crate::providers::{Ack, ProviderId};
use crate::store::record::{BatchItem, Job};
use crate::store::webhooks::NewEvent;
use crate::store::{Backend, Store};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// Most deliveries written in one transaction.
pub const MAX_BATCH: usize = 64;
/// Deliveries waiting per writer before senders wait too.
const QUEUE: usize = 1024;

struct Pending {
    item: BatchItem,
    provider: ProviderId,
    /// Set for a payment: how its reply follows from what recording did.
    info: Option<ToRecord>,
    /// The outcome already known, for a delivery that records no payment.
    known: Option<Handled>,
    reply: oneshot::Sender<Handled>,
}

/// The queue in front of the writers, started on first use.
#[derive(Clone, Default)]
pub struct Intake {
    writers: Arc<OnceLock<Vec<mpsc::Sender<Pending>>>>,
}

impl Intake {
    /// Archives a delivery that records no payment; `handled` says what became of it.
    pub(super) async fn archive(
        &self,
        store: &Store,
        provider: ProviderId,
        mut event: NewEvent,
        handled: Handled,
    ) -> Handled {
        handled.fill(provider, &mut event);
        let shard = event.account.map(|a| a.1).unwrap_or(0);
        self.submit(
            store,
            shard,
            Pending {
                item: BatchItem {
                    job: None,
                    event: Some(event),
                },
                provider,
                info: None,
                known: Some(handled),
                reply: oneshot::channel().0,
            },
        )
        .await
    }

    /// Records a paid notification and archives its delivery, together.
    pub(super) async fn record(
        &self,
        store: &Store,
        event: NewEvent,
        job: Job,
        info: ToRecord,
    ) -> Handled {
        let (provider, shard) = (info.provider, job.school.id);
        self.submit(
            store,
            shard,
            Pending {
                item: BatchItem {
                    job: Some(job),
                    event: Some(event),
                },
                provider,
                info: Some(info),
                known: None,
                reply: oneshot::channel().0,
            },
        )
        .await
    }

    async fn submit(&self, store: &Store, shard: i64, mut pending: Pending) -> Handled {
        let writers = self.writers.get_or_init(|| start(store));
        let (tx, rx) = oneshot::channel();
        pending.reply = tx;
        let writer = &writers[shard.unsigned_abs() as usize % writers.len()];
        if writer.send(pending).await.is_err() {
            return retry_later("the writer has stopped");
        }
        rx.await
            .unwrap_or_else(|_| retry_later("the writer dropped the delivery"))
    }
}

fn retry_later(why: &str) -> Handled {
    Handled {
        ack: Ack::RetryLater,
        outcome: "error",
        detail: Some(why.into()),
        verified: false,
        txn_id: None,
        payment_id: None,
        to_match: false,
    }
}

fn start(store: &Store) -> Vec<mpsc::Sender<Pending>> {
    // SQLite has one writer connection: more writers would only queue on it.
    let writers = match store.backend() {
        Backend::Sqlite => 1,
        Backend::Postgres => 2,
    };
    let mut senders = Vec::with_capacity(writers);
    let mut receivers = Vec::with_capacity(writers);
    for _ in 0..writers {
        let (tx, rx) = mpsc::channel(QUEUE);
        senders.push(tx);
        receivers.push(rx);
    }
    let store = store.for_intake();
    // The writers run on a thread of their own: each batch is a handful of round trips, and
    // each answer from the database is handled at once instead of queueing behind the
    // requests the service is parsing and verifying. Should that thread or its runtime not
    // start, they run with the service's tasks rather than not at all.
    let slot = Arc::new(Mutex::new(Some(receivers)));
    let service = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new().name("intake".into()).spawn({
        let (store, slot) = (store.clone(), slot.clone());
        move || {
            let Some(receivers) = take(&slot) else {
                return;
            };
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(run_writers(store, receivers)),
                Err(e) => {
                    tracing::error!(error = %e, "the intake's runtime did not start; its writers share the service's");
                    service.spawn(run_writers(store, receivers));
                }
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "the intake's thread did not start; its writers share the service's");
        if let Some(receivers) = take(&slot) {
            tokio::spawn(run_writers(store, receivers));
        }
    }
    senders
}

fn take(
    slot: &Mutex<Option<Vec<mpsc::Receiver<Pending>>>>,
) -> Option<Vec<mpsc::Receiver<Pending>>> {
    match slot.lock() {
        Ok(mut g) => g.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    }
}

async fn run_writers(store: Store, receivers: Vec<mpsc::Receiver<Pending>>) {
    let writers: Vec<_> = receivers
        .into_iter()
        .map(|rx| tokio::spawn(write(store.clone(), rx)))
        .collect();
    for w in writers {
        let _ = w.await;
    }
}

async fn write(store: Store, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let pending = std::mem::take(&mut batch);
        // A batch runs as a task of its own so that, should it ever panic, its senders are
        // asked to retry (their replies are dropped) and this writer goes on with the next.
        let store = store.clone();
        if let Err(e) = tokio::spawn(async move { write_batch(&store, pending).await }).await {
            tracing::error!(
                panic = e.is_panic(),
                "a batch of deliveries stopped; its senders will retry"
            );
        }
    }
}

async fn write_batch(store: &Store, pending: Vec<Pending>) {
    match attempt(store, &pending).await {
        Ok(handled) => answer(pending, handled),
        // One bad delivery must not fail the others: each goes again on its own.
        Err(e) => {
            tracing::warn!(error = %e, size = pending.len(), "a batch failed; writing its deliveries one by one");
            for p in pending {
                match attempt(store, std::slice::from_ref(&p)).await {
                    Ok(handled) => answer(vec![p], handled),
                    Err(e) => give_up(store, p, e).await,
                }
            }
        }
    }
}

/// Writes `pending` in one transaction; the outcome of each, or an error if nothing was written.
async fn attempt(store: &Store, pending: &[Pending]) -> Result<Vec<Handled>, Error> {
    let mut items: Vec<BatchItem> = pending.iter().map(|p| p.item.clone()).collect();
    let mut handled: Vec<Option<Handled>> = pending.iter().map(|p| p.known.clone()).collect();
    let infos: Vec<(ProviderId, Option<&ToRecord>)> = pending
        .iter()
        .map(|p| (p.provider, p.info.as_ref()))
        .collect();
    store
        .record_batch(&mut items, &mut |i, result, named, event| {
            if let (Some((provider, Some(info))), Some(event)) = (infos.get(i), event) {
                let h = settle(info, result, named);
                h.fill(*provider, event);
                handled[i] = Some(h);
            }
        })
        .await?;
    Ok(handled
        .into_iter()
        .map(|h| h.unwrap_or_else(|| retry_later("no outcome")))
        .collect())
}

fn answer(pending: Vec<Pending>, handled: Vec<Handled>) {
    for (p, h) in pending.into_iter().zip(handled) {
        // The sender may have hung up; what was written stays written.
        let _ = p.reply.send(h);
    }
}

/// The delivery could not be written even alone: ask the sender to retry, and keep a record of
/// the attempt if the database takes one.
async fn give_up(store: &Store, p: Pending, e: Error) {
    tracing::error!(error = %e, provider = p.provider.as_str(), "could not write a delivery");
    let handled = retry_later("could not be written; the sender will retry");
    if let Some(mut event) = p.item.event {
        handled.fill(p.provider, &mut event);
        event.verified = p.known.as_ref().is_some_and(|k| k.verified) || p.info.is_some();
        if let Err(e) = store.archive_event(&event).await {
            tracing::error!(error = %e, "could not archive a delivery");
        }
    }
    let _ = p.reply.send(handled);
}
