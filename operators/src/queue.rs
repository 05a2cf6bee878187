//! Queues between operators, bounded in rows rather than in batches: a batch
//! of 64k rows and one of 10 rows do not weigh the same.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Something that knows how many rows it holds.
pub trait Weighted {
    fn weight(&self) -> usize;
}

impl Weighted for crate::Envelope {
    fn weight(&self) -> usize {
        crate::Envelope::weight(self)
    }
}

/// Creates a queue that holds at most `capacity_rows` rows. An item heavier
/// than the whole capacity is still admitted, alone, so it cannot deadlock.
pub fn channel<T: Weighted>(capacity_rows: usize) -> (RowSender<T>, RowReceiver<T>) {
    let capacity = capacity_rows.clamp(1, Semaphore::MAX_PERMITS) as u32;
    let permits = Arc::new(Semaphore::new(capacity as usize));
    // The semaphore is the real bound; the item count bound only has to be
    // large enough never to bind before it.
    let (tx, rx) = mpsc::channel(capacity as usize);
    (
        RowSender {
            tx,
            permits: permits.clone(),
            capacity,
        },
        RowReceiver {
            rx,
            permits,
            capacity,
        },
    )
}

pub struct RowSender<T> {
    tx: mpsc::Sender<(T, OwnedSemaphorePermit)>,
    permits: Arc<Semaphore>,
    capacity: u32,
}

impl<T> Clone for RowSender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            permits: self.permits.clone(),
            capacity: self.capacity,
        }
    }
}

/// The receiving side is gone: the downstream operator stopped.
#[derive(Debug)]
pub struct Closed;

impl<T: Weighted> RowSender<T> {
    /// Waits until the queue has room for the item's rows, then enqueues it.
    pub async fn send(&self, item: T) -> Result<(), Closed> {
        let n = (item.weight() as u32).clamp(1, self.capacity);
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| Closed)?;
        self.tx.send((item, permit)).await.map_err(|_| Closed)
    }

    /// Enqueues the item if its rows fit now; otherwise hands it back, so a
    /// caller that must not block (the Kafka source, which pauses partitions
    /// instead) can decide what to do.
    pub fn try_send(&self, item: T) -> Result<(), TrySend<T>> {
        let n = (item.weight() as u32).clamp(1, self.capacity);
        let permit = match self.permits.clone().try_acquire_many_owned(n) {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::NoPermits) => return Err(TrySend::Full(item)),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(TrySend::Closed),
        };
        self.tx.try_send((item, permit)).map_err(|e| match e {
            mpsc::error::TrySendError::Full((item, _)) => TrySend::Full(item),
            mpsc::error::TrySendError::Closed(_) => TrySend::Closed,
        })
    }

    /// Rows currently queued.
    pub fn queued_rows(&self) -> usize {
        (self.capacity as usize).saturating_sub(self.permits.available_permits())
    }

    /// A handle that reads how many rows are queued without keeping the
    /// queue open (a sender would keep the receiver from ever ending).
    pub fn depth(&self) -> QueueDepth {
        QueueDepth {
            permits: self.permits.clone(),
            capacity: self.capacity,
        }
    }
}

/// Reads a queue's fill level, for metrics and status.
#[derive(Clone)]
pub struct QueueDepth {
    permits: Arc<Semaphore>,
    capacity: u32,
}

impl QueueDepth {
    pub fn rows(&self) -> usize {
        (self.capacity as usize).saturating_sub(self.permits.available_permits())
    }
}

/// Why [`RowSender::try_send`] did not enqueue.
#[derive(Debug)]
pub enum TrySend<T> {
    Full(T),
    Closed,
}

pub struct RowReceiver<T> {
    rx: mpsc::Receiver<(T, OwnedSemaphorePermit)>,
    permits: Arc<Semaphore>,
    capacity: u32,
}

impl<T> RowReceiver<T> {
    /// The next item, or `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<T> {
        self.rx.recv().await.map(|(item, _permit)| item)
    }

    /// The next item if one is queued now, without waiting.
    #[cfg(test)]
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        self.rx.try_recv().ok().map(|(item, _permit)| item)
    }

    /// Rows currently queued.
    pub fn queued_rows(&self) -> usize {
        (self.capacity as usize).saturating_sub(self.permits.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Rows(usize);
    impl Weighted for Rows {
        fn weight(&self) -> usize {
            self.0
        }
    }

    #[tokio::test]
    async fn sender_waits_when_rows_exceed_capacity() {
        let (tx, mut rx) = channel::<Rows>(100);
        tx.send(Rows(60)).await.expect("open");
        assert_eq!(rx.queued_rows(), 60);
        let tx2 = tx.clone();
        let blocked = tokio::spawn(async move { tx2.send(Rows(50)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !blocked.is_finished(),
            "110 rows must not fit in a 100-row queue"
        );
        assert_eq!(rx.recv().await.map(|r| r.0), Some(60));
        blocked.await.expect("join").expect("open");
        assert_eq!(rx.queued_rows(), 50);
    }

    #[tokio::test]
    async fn try_send_hands_the_item_back_when_full() {
        let (tx, mut rx) = channel::<Rows>(100);
        assert!(tx.try_send(Rows(70)).is_ok());
        match tx.try_send(Rows(40)) {
            Err(TrySend::Full(r)) => assert_eq!(r.0, 40),
            Ok(()) => panic!("110 rows must not fit in a 100-row queue"),
            Err(TrySend::Closed) => panic!("queue closed"),
        }
        assert_eq!(tx.queued_rows(), 70);
        assert_eq!(rx.recv().await.map(|r| r.0), Some(70));
        assert!(tx.try_send(Rows(40)).is_ok());
        drop(rx);
        assert!(matches!(tx.try_send(Rows(1)), Err(TrySend::Closed)));
    }

    #[tokio::test]
    async fn an_item_larger_than_capacity_is_admitted_alone() {
        let (tx, mut rx) = channel::<Rows>(10);
        tx.send(Rows(1000)).await.expect("open");
        assert_eq!(rx.recv().await.map(|r| r.0), Some(1000));
        drop(tx);
        assert!(rx.recv().await.is_none());
    }
}
