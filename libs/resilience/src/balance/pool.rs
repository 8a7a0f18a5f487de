//! The balancer's state, free of locks, clocks and global randomness: every method takes the
//! current instant and, where it draws, a random source, so the tests replay exact sequences.

use std::{fmt, str::FromStr, sync::Arc, time::Instant};

use rand::Rng;

use super::health::{EjectionConfig, Health, Outcome, Transition};

/// How the next endpoint is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Each endpoint in turn. Fair when requests cost about the same and endpoints are alike.
    RoundRobin,
    /// Power of two choices: draw two endpoints at random and send the request to the one with
    /// fewer requests in flight. Nearly as good as asking every endpoint for its load, at the cost
    /// of two lookups; and unlike "always the least loaded" it does not stampede a newly idle
    /// endpoint (Mitzenmacher, 2001).
    LeastRequests,
}

impl Strategy {
    /// The configuration spelling: `round_robin`, `least_requests`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::LeastRequests => "least_requests",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "round_robin" => Ok(Self::RoundRobin),
            "least_requests" => Ok(Self::LeastRequests),
            _ => Err("expected round_robin or least_requests".to_owned()),
        }
    }
}

/// One endpoint and what the balancer knows about it.
#[derive(Debug)]
pub(crate) struct Slot<T> {
    /// Unique per slot ever created, so a late report for a removed endpoint that came back
    /// under the same name cannot touch the new slot.
    pub(crate) id: u64,
    pub(crate) name: Arc<str>,
    pub(crate) value: T,
    pub(crate) in_flight: u32,
    pub(crate) health: Health,
    /// Set by active health checks (`grpc.health.v1`); `true` until one says otherwise.
    pub(crate) serving: bool,
}

/// What a pick is asked for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    /// Endpoints to avoid if any other is usable: those that already failed this call, so a
    /// retry goes elsewhere.
    pub avoid: &'a [Arc<str>],
}

/// The balancer's whole state.
#[derive(Debug)]
pub(crate) struct Pool<T> {
    pub(crate) strategy: Strategy,
    pub(crate) ejection: EjectionConfig,
    pub(crate) slots: Vec<Slot<T>>,
    cursor: usize,
    next_id: u64,
}

impl<T> Pool<T> {
    pub(crate) fn new(strategy: Strategy, ejection: EjectionConfig) -> Self {
        Self {
            strategy,
            ejection,
            slots: Vec::new(),
            cursor: 0,
            next_id: 0,
        }
    }

    /// Replaces the endpoint list with `names`, keeping the state (connection, load, health) of
    /// endpoints that stay. `make` builds the value of each new endpoint; one it cannot build
    /// (`None`) is left out. Returns the names added and removed.
    pub(crate) fn update(
        &mut self,
        names: &[Arc<str>],
        mut make: impl FnMut(&str) -> Option<T>,
    ) -> (Vec<Arc<str>>, Vec<Arc<str>>) {
        let mut names: Vec<Arc<str>> = names.to_vec();
        // A stable order, whatever order DNS answered in, so round-robin does not jump when the
        // answer is shuffled.
        names.sort();
        names.dedup();
        let mut old: Vec<Option<Slot<T>>> = std::mem::take(&mut self.slots)
            .into_iter()
            .map(Some)
            .collect();
        let mut added = Vec::new();
        for name in &names {
            let kept = old
                .iter_mut()
                .find(|slot| slot.as_ref().is_some_and(|slot| slot.name == *name))
                .and_then(Option::take);
            match kept {
                Some(slot) => self.slots.push(slot),
                None => {
                    let Some(value) = make(name) else { continue };
                    self.next_id += 1;
                    self.slots.push(Slot {
                        id: self.next_id,
                        name: Arc::clone(name),
                        value,
                        in_flight: 0,
                        health: Health::default(),
                        serving: true,
                    });
                    added.push(Arc::clone(name));
                }
            }
        }
        let removed = old.into_iter().flatten().map(|slot| slot.name).collect();
        (added, removed)
    }

    /// Ends ejections whose time is up; returns the endpoints that came back.
    pub(crate) fn refresh(&mut self, now: Instant) -> Vec<Arc<str>> {
        self.slots
            .iter_mut()
            .filter_map(|slot| {
                (slot.health.refresh(now) == Some(Transition::Returned))
                    .then(|| Arc::clone(&slot.name))
            })
            .collect()
    }

    /// Chooses an endpoint for `request` (index into `slots`) and counts it in flight.
    ///
    /// Candidates, from best to worst: healthy and not to be avoided; healthy; every endpoint
    /// ("panic mode": when all look down, trying one beats failing without trying — the
    /// health view may be stale, and the circuit breaker is the layer that stops calling).
    pub(crate) fn pick<R: Rng + ?Sized>(
        &mut self,
        request: Request<'_>,
        now: Instant,
        rng: &mut R,
    ) -> Option<usize> {
        let healthy = |slot: &Slot<T>| !slot.health.is_ejected(now) && slot.serving;
        let preferred: Vec<bool> = self
            .slots
            .iter()
            .map(|slot| healthy(slot) && !request.avoid.contains(&slot.name))
            .collect();
        let candidates = if preferred.contains(&true) {
            preferred
        } else if self.slots.iter().any(healthy) {
            self.slots.iter().map(healthy).collect()
        } else {
            vec![true; self.slots.len()]
        };
        let chosen = match self.strategy {
            Strategy::LeastRequests => self.least_requests(&candidates, rng),
            Strategy::RoundRobin => self.round_robin(&candidates),
        }?;
        if let Some(slot) = self.slots.get_mut(chosen) {
            slot.in_flight = slot.in_flight.saturating_add(1);
        }
        Some(chosen)
    }

    /// The next candidate at or after the cursor. Walking the full list (rather than taking the
    /// cursor modulo the candidates) keeps the rotation fair when the candidates change.
    fn round_robin(&mut self, candidates: &[bool]) -> Option<usize> {
        let count = candidates.len();
        (0..count)
            .map(|offset| (self.cursor + offset) % count)
            .find(|index| candidates[*index])
            .inspect(|index| self.cursor = index + 1)
    }

    /// Two distinct random candidates; the one with fewer requests in flight wins (the first
    /// drawn on a tie, which is itself random).
    fn least_requests<R: Rng + ?Sized>(&self, candidates: &[bool], rng: &mut R) -> Option<usize> {
        let usable: Vec<usize> = (0..candidates.len())
            .filter(|index| candidates[*index])
            .collect();
        match usable.len() {
            0 => None,
            1 => Some(usable[0]),
            count => {
                let first = rng.random_range(0..count);
                // Draw the second from the others: shift past the first.
                let mut second = rng.random_range(0..count - 1);
                if second >= first {
                    second += 1;
                }
                let (a, b) = (usable[first], usable[second]);
                Some(if self.slots[b].in_flight < self.slots[a].in_flight {
                    b
                } else {
                    a
                })
            }
        }
    }

    /// Records the end of a call made on slot `id`; returns the transition it caused.
    pub(crate) fn finish(
        &mut self,
        id: u64,
        outcome: Option<Outcome>,
        now: Instant,
    ) -> Option<(Arc<str>, Transition)> {
        let ejection = self.ejection;
        let slot = self.slots.iter_mut().find(|slot| slot.id == id)?;
        slot.in_flight = slot.in_flight.saturating_sub(1);
        let transition = slot.health.record(outcome?, now, &ejection)?;
        Some((Arc::clone(&slot.name), transition))
    }

    /// Records an outcome observed outside a pick (an active health check).
    pub(crate) fn report(
        &mut self,
        name: &str,
        outcome: Outcome,
        now: Instant,
    ) -> Option<Transition> {
        let ejection = self.ejection;
        let slot = self.slots.iter_mut().find(|slot| &*slot.name == name)?;
        slot.health.record(outcome, now, &ejection)
    }

    /// Marks an endpoint serving or not, per an active health check; returns whether it changed.
    pub(crate) fn set_serving(&mut self, name: &str, serving: bool) -> bool {
        match self.slots.iter_mut().find(|slot| &*slot.name == name) {
            Some(slot) if slot.serving != serving => {
                slot.serving = serving;
                true
            }
            _ => false,
        }
    }
}
