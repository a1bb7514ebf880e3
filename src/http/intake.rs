//! Group commit for deliveries. Each delivery waits in a queue; a writer takes everything that
//! queued while it wrote the last batch and writes it in one transaction (payments, fee lines,
//! allocations, audit records, archived deliveries). Under load, batches grow and the cost per
//! delivery falls; when idle, a delivery is written at once, alone.
//!
//! Schools are spread over the writers by school id ([`WRITERS`], one per instance as measured).
//! Refused deliveries (bad signatures, unknown accounts, junk) have a queue
//! and a writer of their own that archives them in large batches, so they never delay a real
//! delivery's commit. Every queue is bounded: when one is full the delivery is answered "retry
//! later" before anything is written. Exactly-once does not depend on these queues: it comes from
//! the database, under each school's ledger lock, so any number of instances can share one
//! PostgreSQL.

use super::webhooks::{Handled, ToRecord};
use crate::error::Error;
use crate::providers::Sender;
use crate::store::record::{BatchItem, Job};
use crate::store::webhooks::NewEvent;
use crate::store::Store;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Most deliveries written in one transaction.
pub const MAX_BATCH: usize = 64;
/// Writers per instance. SQLite has one writer connection, so more would only queue on it. On
/// PostgreSQL one writer measured the same rate as two (2,640–2,980/s against 2,690–2,910/s
/// saturated, back to back) for 15–25 % less CPU per delivery: its batches are twice as large,
/// so each delivery's share of a batch's round trips halves. More throughput comes from more
/// instances, each with its writer.
const WRITERS: usize = 1;
/// Deliveries waiting per writer; past it, senders are asked to retry.
const QUEUE: usize = 1024;
/// Refused deliveries waiting to be archived; past it they are answered but not archived.
const REFUSED_QUEUE: usize = 512;
/// Most refused deliveries archived in one transaction.
const REFUSED_BATCH: usize = 256;

struct Pending {
    item: BatchItem,
    sender: &'static dyn Sender,
    /// Set for a payment: how its reply follows from what recording did.
    info: Option<ToRecord>,
    /// The outcome already known, for a delivery that records no payment.
    known: Option<Handled>,
    reply: oneshot::Sender<Handled>,
    _busy: Busy,
}

struct Refused {
    event: NewEvent,
    reply: oneshot::Sender<bool>,
    _busy: Busy,
}

/// Counts a delivery from the moment it is queued until it is written or dropped, so a
/// shutdown can wait for the writers to finish what they hold.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Queues {
    writers: Vec<mpsc::Sender<Pending>>,
    refused: mpsc::Sender<Refused>,
}

/// The queues in front of the writers, started on first use.
#[derive(Clone, Default)]
pub struct Intake {
    queues: Arc<OnceLock<Queues>>,
    busy: Arc<AtomicUsize>,
    closed: Arc<AtomicBool>,
}

/// Why a delivery was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotQueued {
    /// The queue is full: the service is overloaded.
    Full,
    /// The service is stopping.
    Closed,
}

impl Intake {
    /// Archives a verified delivery that records no payment; `handled` says what became of it.
    pub(super) async fn keep(
        &self,
        store: &Store,
        sender: &'static dyn Sender,
        mut event: NewEvent,
        handled: Handled,
    ) -> Handled {
        handled.fill(sender, &mut event);
        let shard = event.account.map(|a| a.1).unwrap_or(0);
        self.submit(
            store,
            shard,
            sender,
            BatchItem {
                job: None,
                event: Some(event),
            },
            None,
            Some(handled),
        )
        .await
    }

    /// Records a paid notification and archives its delivery, together.
    pub(super) async fn record(
        &self,
        store: &Store,
        sender: &'static dyn Sender,
        event: NewEvent,
        job: Job,
        info: ToRecord,
    ) -> Handled {
        let shard = job.school.id;
        self.submit(
            store,
            shard,
            sender,
            BatchItem {
                job: Some(job),
                event: Some(event),
            },
            Some(info),
            None,
        )
        .await
    }

    async fn submit(
        &self,
        store: &Store,
        shard: i64,
        sender: &'static dyn Sender,
        item: BatchItem,
        info: Option<ToRecord>,
        known: Option<Handled>,
    ) -> Handled {
        if self.closed.load(Ordering::SeqCst) {
            return Handled::not_written(NotQueued::Closed);
        }
        let queues = self.queues.get_or_init(|| start(store));
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            item,
            sender,
            info,
            known,
            reply: tx,
            _busy: Busy::new(&self.busy),
        };
        let writer = &queues.writers[shard.unsigned_abs() as usize % queues.writers.len()];
        // Decided before anything is written: a full queue means the writers are behind, and
        // waiting would only hold the sender's connection until it gives up.
        if let Err(e) = writer.try_send(pending) {
            return Handled::not_written(match e {
                mpsc::error::TrySendError::Full(_) => NotQueued::Full,
                mpsc::error::TrySendError::Closed(_) => NotQueued::Closed,
            });
        }
        rx.await
            .unwrap_or_else(|_| Handled::retry_later("the writer dropped the delivery"))
    }

    /// Archives a refused delivery; false when it could not be (the queue is full or the
    /// service is stopping), in which case nothing was written.
    pub(super) async fn refused(&self, store: &Store, event: NewEvent) -> Result<(), NotQueued> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(NotQueued::Closed);
        }
        let queues = self.queues.get_or_init(|| start(store));
        let (tx, rx) = oneshot::channel();
        queues
            .refused
            .try_send(Refused {
                event,
                reply: tx,
                _busy: Busy::new(&self.busy),
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => NotQueued::Full,
                mpsc::error::TrySendError::Closed(_) => NotQueued::Closed,
            })?;
        match rx.await {
            Ok(true) => Ok(()),
            _ => Err(NotQueued::Full),
        }
    }

    /// Takes no more deliveries, and waits (at most `within`) until the writers have written
    /// or dropped what they hold. True when they are done.
    pub async fn close(&self, within: Duration) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        let until = Instant::now() + within;
        while self.busy.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

fn start(store: &Store) -> Queues {
    let writers = WRITERS;
    let mut senders = Vec::with_capacity(writers);
    let mut receivers = Vec::with_capacity(writers);
    for _ in 0..writers {
        let (tx, rx) = mpsc::channel(QUEUE);
        senders.push(tx);
        receivers.push(rx);
    }
    let (refused_tx, refused_rx) = mpsc::channel(REFUSED_QUEUE);
    let store = store.for_intake();
    // The writers run on a thread of their own: each batch is a handful of round trips, and
    // each answer from the database is handled at once instead of queueing behind the
    // requests the service is parsing and verifying. Should that thread or its runtime not
    // start, they run with the service's tasks rather than not at all.
    let slot = Arc::new(Mutex::new(Some((receivers, refused_rx))));
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
    Queues {
        writers: senders,
        refused: refused_tx,
    }
}

type Receivers = (Vec<mpsc::Receiver<Pending>>, mpsc::Receiver<Refused>);

fn take(slot: &Mutex<Option<Receivers>>) -> Option<Receivers> {
    match slot.lock() {
        Ok(mut g) => g.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    }
}

async fn run_writers(store: Store, (receivers, refused): Receivers) {
    let mut writers: Vec<_> = receivers
        .into_iter()
        .map(|rx| tokio::spawn(write(store.clone(), rx)))
        .collect();
    writers.push(tokio::spawn(write_refused(store, refused)));
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
        // A sender that hung up is not written: nothing was answered to it, and its retry is
        // then a first delivery rather than a duplicate of one it never heard about.
        let pending: Vec<Pending> = std::mem::take(&mut batch)
            .into_iter()
            .filter(|p| !p.reply.is_closed())
            .collect();
        if pending.is_empty() {
            continue;
        }
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

async fn write_refused(store: Store, mut rx: mpsc::Receiver<Refused>) {
    let mut batch = Vec::with_capacity(REFUSED_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < REFUSED_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let refused = std::mem::take(&mut batch);
        let events: Vec<NewEvent> = refused.iter().map(|r| r.event.clone()).collect();
        let written = match store.archive_events(&events).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, size = events.len(), "could not archive refused deliveries");
                false
            }
        };
        for r in refused {
            let _ = r.reply.send(written);
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
    let outcomes = store.record_batch(&mut items).await?;
    Ok(pending
        .iter()
        .zip(outcomes)
        .map(|(p, outcome)| match (&p.known, &p.info, outcome) {
            (Some(known), _, _) => known.clone(),
            (None, Some(info), Some(o)) => Handled::recorded(info, &o),
            _ => Handled::retry_later("no outcome"),
        })
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
    tracing::error!(error = %e, provider = p.sender.id().as_str(), "could not write a delivery");
    let handled = Handled::retry_later("could not be written; the sender will retry");
    if let Some(mut event) = p.item.event {
        handled.fill(p.sender, &mut event);
        event.verified = p.known.as_ref().is_some_and(|k| k.verified) || p.info.is_some();
        if let Err(e) = store.archive_event(&event).await {
            tracing::error!(error = %e, "could not archive a delivery");
        }
    }
    let _ = p.reply.send(handled);
}
