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
