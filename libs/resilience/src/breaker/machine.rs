//! The circuit breaker's state machine, free of I/O, locks and clocks: every method takes the
//! current instant, so tests drive it through each transition deterministically.
//!
//! ```text
//!            failure_threshold consecutive failures,
//!            or failure rate ≥ failure_rate over the window
//!   Closed ───────────────────────────────────────────────► Open
//!     ▲                                                    │  ▲
//!     │ half_open_probes successes      open_for elapsed   │  │ any probe fails
//!     │                                                    ▼  │
//!     └──────────────────────────────────────────────── HalfOpen
//! ```
//!
//! Every transition starts a new *generation*. A call carries the generation it was admitted
//! in, and its outcome only counts in that generation: a slow call admitted while Closed that
//! finishes after the breaker opened says nothing about the upstream *now*, and must not be
//! mistaken for a half-open probe.

use std::{collections::VecDeque, time::Instant};

use super::BreakerConfig;

/// The state of a circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls flow; outcomes are watched.
    Closed,
    /// Calls are rejected without being made.
    Open,
    /// A few probe calls are let through to test the upstream.
    HalfOpen,
}

impl BreakerState {
    /// The value of the `circuit_breaker_state` gauge: 0 closed, 1 open, 2 half-open.
    pub fn gauge_value(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::Open => 1.0,
            Self::HalfOpen => 2.0,
        }
    }

    /// The `to` label of `circuit_breaker_transitions_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// What a finished call says about the upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
}

/// Proof that a call was admitted, and in which generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    generation: u64,
}

#[derive(Debug)]
enum Phase {
    Closed {
        consecutive_failures: u32,
        window: Window,
    },
    Open {
        since: Instant,
    },
    HalfOpen {
        /// Probe slots taken: in flight or finished successfully.
        admitted: u32,
        succeeded: u32,
    },
}

#[derive(Debug)]
pub(crate) struct Machine {
    config: BreakerConfig,
    phase: Phase,
    generation: u64,
}

impl Machine {
    /// A closed breaker. `config` must be valid.
    pub(crate) fn new(config: BreakerConfig) -> Self {
        Self {
            phase: Self::closed(&config),
            config,
            generation: 0,
        }
    }

    fn closed(config: &BreakerConfig) -> Phase {
        Phase::Closed {
            consecutive_failures: 0,
            window: Window::new(config.window),
        }
    }

    /// The state at `now`; moves Open to HalfOpen once `open_for` has passed (returned as the
    /// transition made, if any).
    pub(crate) fn state(&mut self, now: Instant) -> (BreakerState, Option<BreakerState>) {
        let transition = match self.phase {
            Phase::Open { since }
                if now.saturating_duration_since(since) >= self.config.open_for =>
            {
                Some(self.enter(BreakerState::HalfOpen, now))
            }
            _ => None,
        };
        let state = match self.phase {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        };
        (state, transition)
    }

    /// Asks to make a call at `now`: a ticket, or `None` if the call must be rejected.
    pub(crate) fn admit(&mut self, now: Instant) -> (Option<Ticket>, Option<BreakerState>) {
        let (_, transition) = self.state(now);
        let ticket = Ticket {
            generation: self.generation,
        };
        let admitted = match &mut self.phase {
            Phase::Closed { .. } => true,
            Phase::Open { .. } => false,
            Phase::HalfOpen { admitted, .. } => {
                let free = *admitted < self.config.half_open_probes;
                if free {
                    *admitted += 1;
                }
                free
            }
        };
        (admitted.then_some(ticket), transition)
    }

    /// Records the outcome of an admitted call; returns the transition it caused, if any.
    pub(crate) fn record(
        &mut self,
        ticket: Ticket,
        outcome: Outcome,
        now: Instant,
    ) -> Option<BreakerState> {
        if ticket.generation != self.generation {
            return None;
        }
        let config = &self.config;
        let next = match &mut self.phase {
            Phase::Closed {
                consecutive_failures,
                window,
            } => {
                window.push(outcome);
                *consecutive_failures = match outcome {
                    Outcome::Success => 0,
                    Outcome::Failure => consecutive_failures.saturating_add(1),
                };
                let too_many_in_a_row = *consecutive_failures >= config.failure_threshold;
                let rate_too_high = window.len() >= config.minimum_calls
                    && window.failure_rate() >= config.failure_rate;
                (too_many_in_a_row || rate_too_high).then_some(BreakerState::Open)
            }
            // Only half-open tickets carry the current generation while open or half-open.
            Phase::Open { .. } => None,
            Phase::HalfOpen { succeeded, .. } => match outcome {
                Outcome::Failure => Some(BreakerState::Open),
                Outcome::Success => {
                    *succeeded += 1;
                    (*succeeded >= config.half_open_probes).then_some(BreakerState::Closed)
                }
            },
        };
        next.map(|state| self.enter(state, now))
    }

    /// Gives back the slot of an admitted call that was abandoned before it finished (its
    /// future was dropped): it proved nothing either way, so another probe may take its place.
    pub(crate) fn release(&mut self, ticket: Ticket) {
        if ticket.generation != self.generation {
            return;
        }
        if let Phase::HalfOpen { admitted, .. } = &mut self.phase {
            *admitted = admitted.saturating_sub(1);
        }
    }

    fn enter(&mut self, state: BreakerState, now: Instant) -> BreakerState {
        self.generation = self.generation.wrapping_add(1);
        self.phase = match state {
            BreakerState::Closed => Self::closed(&self.config),
            BreakerState::Open => Phase::Open { since: now },
            BreakerState::HalfOpen => Phase::HalfOpen {
                admitted: 0,
                succeeded: 0,
            },
        };
        state
    }
}

/// The outcomes of the last `capacity` calls, with a running failure count.
#[derive(Debug)]
struct Window {
    capacity: usize,
    outcomes: VecDeque<Outcome>,
    failures: usize,
}

impl Window {
    fn new(capacity: u32) -> Self {
        let capacity = capacity as usize;
        Self {
            capacity,
            outcomes: VecDeque::with_capacity(capacity),
            failures: 0,
        }
    }

    fn push(&mut self, outcome: Outcome) {
        if self.outcomes.len() == self.capacity
            && self.outcomes.pop_front() == Some(Outcome::Failure)
        {
            self.failures -= 1;
        }
        self.outcomes.push_back(outcome);
        if outcome == Outcome::Failure {
            self.failures += 1;
        }
    }

    fn len(&self) -> u32 {
        // Never more than `capacity`, which came from a u32.
        u32::try_from(self.outcomes.len()).unwrap_or(u32::MAX)
    }

    fn failure_rate(&self) -> f64 {
        if self.outcomes.is_empty() {
            return 0.0;
        }
        // Division, not `failures >= rate · len`: 3/10 rounds to exactly the f64 nearest 0.3,
        // while 0.3 · 10 rounds to slightly more than 3.
        self.failures as f64 / self.outcomes.len() as f64
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
