//! Fits that take turns on the cores: more score-model fits than cores, switched between
//! epochs.
//!
//! A default run trains 5 cross-fitted folds on 2 cores. Run to completion, one core
//! trains three fits and the other two, and the last fit runs alone while the other core
//! waits: the run takes three fits' time instead of two and a half. Fits that hand their
//! core on between epochs share the cores as in processor sharing, so the last fits end
//! together and the run takes about the total work over the cores (McNaughton's bound for
//! preemptive scheduling). A fit's arithmetic does not depend on when or where its epochs
//! run, so its results are the same bits.
//!
//! [`Turns`] is a fair counting semaphore: at most `seats` fits hold a seat, the others
//! wait in a first-come, first-served queue, and [`yield_turn`], called by the training
//! loop after every epoch, hands the seat to the longest waiter once the fit has held it
//! for a quantum ([`QUANTUM`]). Outside [`Turns::run`] it does nothing. [`run_in_turns`]
//! runs a list of jobs on a few workers that take turns. The standard library and rayon
//! have no fair semaphore (rayon's jobs run to completion once started), hence the few
//! lines here. The measurements behind the design (workers, quantum, when it pays) are in
//! `docs/benchmark.md`, "The fits take turns".

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Fits taking turns on a number of seats (cores; module docs).
pub struct Turns {
    seats: FairSemaphore,
    quantum: Duration,
}

/// A counting semaphore that grants its permits first come, first served.
struct FairSemaphore {
    state: Mutex<Queue>,
    changed: Condvar,
}

struct Queue {
    /// Permits not held.
    free: usize,
    /// Tickets of the threads waiting for a permit, first come first.
    waiting: VecDeque<u64>,
    next_ticket: u64,
}

impl FairSemaphore {
    fn new(permits: usize) -> Self {
        FairSemaphore {
            state: Mutex::new(Queue {
                free: permits,
                waiting: VecDeque::new(),
                next_ticket: 0,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a permit, first come first served.
    fn acquire(&self) {
        let mut q = self.lock();
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.waiting.push_back(ticket);
        while !(q.free > 0 && q.waiting.front() == Some(&ticket)) {
            q = self.changed.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
        q.waiting.pop_front();
        q.free -= 1;
        drop(q);
        // The next in line may find a permit too.
        self.changed.notify_all();
    }

    fn release(&self) {
        self.lock().free += 1;
        self.changed.notify_all();
    }

    /// Gives the permit to the longest waiter and queues for the next one; `false`
    /// (keeping the permit) when nobody waits.
    fn hand_on(&self) -> bool {
        let mut q = self.lock();
        if q.waiting.is_empty() {
            return false;
        }
        q.free += 1;
        drop(q);
        self.changed.notify_all();
        self.acquire();
        true
    }
}

/// The seat this thread holds, and the seconds it has held seats.
struct Held {
    turns: Arc<Turns>,
    since: Instant,
    seconds: f64,
}

/// The shortest turn of a fit on the shipped data's scale: a fit keeps its seat for at
/// least this long before it hands it on (an epoch streams the fit's training windows,
/// which stay in the last-level cache while it runs and come from memory again after a
/// switch). The cores then wait at most this long for the last fit.
pub const QUANTUM: Duration = Duration::from_millis(250);

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

impl Turns {
    /// Threads waiting for a seat (for tests that need every job queued before the first
    /// turn is handed on).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.seats.lock().waiting.len()
    }

    /// `seats` (at least 1) fits run at a time, each for at least `quantum` per turn.
    pub fn new(seats: usize, quantum: Duration) -> Arc<Self> {
        Arc::new(Turns {
            seats: FairSemaphore::new(seats.max(1)),
            quantum,
        })
    }

    /// Runs `f` on this thread holding a seat (waiting for one first, first come first
    /// served), with every [`yield_turn`] inside it handing the seat on; returns `f`'s
    /// result and the seconds the seat was held (the job's own time, without its waits).
    pub fn run<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> (R, f64) {
        self.seats.acquire();
        let previous = HELD.with(|h| {
            h.borrow_mut().replace(Held {
                turns: Arc::clone(self),
                since: Instant::now(),
                seconds: 0.0,
            })
        });
        // Releases the seat even if `f` panics, so that the other fits go on.
        struct Release<'a>(&'a Turns, Option<Held>);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                HELD.with(|h| *h.borrow_mut() = self.1.take());
                self.0.seats.release();
            }
        }
        let guard = Release(self, previous);
        let out = f();
        let seconds = HELD.with(|h| {
            h.borrow().as_ref().map_or(0.0, |held| {
                held.seconds + held.since.elapsed().as_secs_f64()
            })
        });
        drop(guard);
        (out, seconds)
    }
}

/// After an epoch: if this thread holds a seat of [`Turns`] and another fit is waiting,
/// gives it the seat and waits for the next free one. Does nothing otherwise.
pub fn yield_turn() {
    let Some(turns) = HELD.with(|h| h.borrow().as_ref().map(|held| Arc::clone(&held.turns))) else {
        return;
    };
    let turn = HELD.with(|h| h.borrow().as_ref().map(|held| held.since.elapsed()));
    if turn.is_some_and(|t| t < turns.quantum) {
        return;
    }
    let t0 = Instant::now();
    if turns.seats.hand_on() {
        // The wait is not the job's time.
        HELD.with(|h| {
            if let Some(held) = h.borrow_mut().as_mut() {
                let waited = t0.elapsed().as_secs_f64();
                let now = held.since.elapsed().as_secs_f64();
                held.seconds += now - waited;
                held.since = Instant::now();
            }
        });
    }
}

/// Runs `f` on every job in order, `seats` at a time taking turns between epochs
/// (`quantum` the shortest turn), on `workers` threads (at least `seats`; each started
/// job keeps its data in memory until it ends, so one more worker than seats keeps the
/// cores busy while a job starts or ends without holding every job's data at once). Each worker runs its jobs on its own
/// one-thread rayon pool, so that a job's parallel loops stay on its seat. Returns, in
/// job order, each result and the seconds its seat was held.
pub fn run_in_turns<T: Sync, R: Send>(
    jobs: &[T],
    (seats, workers): (usize, usize),
    quantum: Duration,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<(R, f64)> {
    let turns = Turns::new(seats, quantum);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: Vec<Mutex<Option<(R, f64)>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers.max(seats).min(jobs.len()) {
            s.spawn(|| {
                let work = || loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let out = turns.run(|| f(job));
                    *done[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(out);
                };
                // Without a pool of its own (the system refused a thread), the job's
                // parallel loops go to the global pool: the same results.
                match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                    Ok(pool) => pool.install(work),
                    Err(_) => work(),
                }
            });
        }
    });
    done.into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .expect("every job ran")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Never more than `seats` jobs between their yields, every job finishes, and the
    /// jobs interleave: with turns, each job's epochs are spread over the whole run
    /// instead of running back to back.
    #[test]
    fn at_most_seats_run_and_jobs_take_turns() {
        let turns = Turns::new(2, Duration::ZERO);
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let log = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for job in 0..5 {
                let (turns, running, most, log) = (&turns, &running, &most, &log);
                s.spawn(move || {
                    turns.run(|| {
                        // Hold the first turn until the other three jobs wait for a
                        // seat: on a busy machine a thread may start late, and a job
                        // with nobody waiting keeps its seat.
                        while turns.waiting() < 3 {
                            std::thread::sleep(std::time::Duration::from_micros(100));
                        }
                        for _ in 0..20 {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            log.lock().unwrap().push(job);
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            running.fetch_sub(1, Ordering::SeqCst);
                            yield_turn();
                        }
                    })
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 2);
        let log = log.into_inner().unwrap();
        assert_eq!(log.len(), 100);
        // Every job's last epoch comes in the last fifth of the run: round robin, not
        // one job after the other (run to completion, the first two jobs would end by
        // position 40).
        for job in 0..5 {
            let last = log.iter().rposition(|&j| j == job).unwrap();
            assert!(last >= 80, "job {job} ended at {last}: {log:?}");
        }
    }

    /// Outside `run`, yielding does nothing; a panicking job releases its seat.
    #[test]
    fn yield_outside_is_a_no_op_and_panics_release() {
        yield_turn();
        let turns = Turns::new(1, Duration::ZERO);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            turns.run(|| panic!("diverged"));
        }));
        assert!(caught.is_err());
        let ((), held) = turns.run(yield_turn);
        assert!(held >= 0.0);
        assert_eq!(turns.seats.lock().free, 1);
    }
}
