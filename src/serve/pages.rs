//! Which sample's rows a page of `/api/connections` is cut from.
//!
//! Rows are built once per sample ([`SampleViews::rows`]), which at 100k
//! sockets takes a few hundred milliseconds. A table that scrolls right
//! after a new sample would wait for that build on every sample; here, once
//! one sample's rows exist, a page request that finds the newest sample's
//! rows not built yet is answered from the last rows built (one interval
//! old) while the new ones are built in the background, once. Only the very
//! first page request of a server waits for a build.

use crate::graph::query::ConnectionRows;
use crate::serve::views::SampleViews;
use crate::serve::Shared;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The last rows built, and which sample is being built now.
#[derive(Default)]
pub struct PageRows {
    last: Mutex<Option<(u64, Arc<ConnectionRows>)>>,
    /// The sample whose rows a background build is making (0: none).
    building: AtomicU64,
}

impl PageRows {
    /// The rows to cut a page from: the newest sample's when built, else
    /// the last built while the newest are built in the background, else
    /// (no rows yet) the newest, built here.
    pub async fn rows(self: &Arc<Self>, shared: &Arc<Shared>) -> Option<Arc<ConnectionRows>> {
        let views: Arc<SampleViews> = shared.read().views.clone();
        if let Some(rows) = views.ready_rows() {
            self.remember(views.number, &rows);
            return Some(rows);
        }
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match last {
            Some((_, rows)) => {
                let previous = self.building.swap(views.number, Ordering::AcqRel);
                if previous != views.number {
                    let (me, shared) = (self.clone(), shared.clone());
                    tokio::task::spawn_blocking(move || {
                        let rows = views.rows(&shared.view_counters);
                        me.remember(views.number, &rows);
                    });
                }
                Some(rows)
            }
            None => {
                let (me, shared) = (self.clone(), shared.clone());
                tokio::task::spawn_blocking(move || {
                    let rows = views.rows(&shared.view_counters);
                    me.remember(views.number, &rows);
                    rows
                })
                .await
                .ok()
            }
        }
    }

    fn remember(&self, number: u64, rows: &Arc<ConnectionRows>) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_ref().is_none_or(|(n, _)| *n < number) {
            *last = Some((number, rows.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::supervisor::Fault;
    use crate::serve::views::View;
    use crate::serve::LatestSample;
    use axum::body::Bytes;
    use std::time::Duration;

    fn publish(shared: &Shared, number: u64) {
        let latest = LatestSample {
            number,
            snapshot: Default::default(),
            rules: Default::default(),
            options: Default::default(),
            containers: Default::default(),
            host_names: Default::default(),
        };
        shared.write().views = Arc::new(SampleViews::new(
            Some(Arc::new(latest)),
            Bytes::from_static(b"{}"),
            Bytes::from_static(b"[]"),
        ));
    }

    #[tokio::test]
    async fn the_first_page_waits_later_ones_take_the_last_rows_while_the_new_build() {
        let history = crate::history::HistoryConfig {
            cap_bytes: 1 << 20,
            keyframe_every: Duration::from_secs(60),
            grace: Duration::from_secs(2),
            service_ports: Default::default(),
        };
        let shared = Arc::new(Shared::new(Duration::from_secs(1), Fault::None, history));
        let pages = Arc::new(PageRows::default());
        publish(&shared, 1);
        let first = pages.rows(&shared).await.unwrap();
        assert_eq!(shared.view_counters.builds(View::Connections), 1);
        // Same sample: the same rows, no build.
        let again = pages.rows(&shared).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(shared.view_counters.builds(View::Connections), 1);
        // A new sample: answered at once from sample 1's rows, and sample
        // 2's are built in the background, once however many ask.
        publish(&shared, 2);
        let stale = pages.rows(&shared).await.unwrap();
        assert!(Arc::ptr_eq(&stale, &first), "sample 1's rows, at once");
        for _ in 0..5 {
            pages.rows(&shared).await.unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while shared.read().views.ready_rows().is_none() {
            assert!(std::time::Instant::now() < deadline, "no background build");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(shared.view_counters.builds(View::Connections), 2);
        let fresh = pages.rows(&shared).await.unwrap();
        assert!(!Arc::ptr_eq(&fresh, &first), "sample 2's rows once built");
        assert!(Arc::ptr_eq(
            &fresh,
            &shared.read().views.ready_rows().unwrap()
        ));
    }
}
