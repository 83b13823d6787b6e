//! Certificate states, operations and the allowed transitions (specs/status.md).

use std::fmt;

use crate::codes::{Code, Failure};

/// A certificate's state; the discriminant is the wire code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Valid = 1,
    Suspended = 2,
    Revoked = 3,
    Cancelled = 4,
    Expired = 5,
    TransferredOut = 6,
    RevokedPenalty = 7,
    Other = 99,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Valid,
        State::Suspended,
        State::Revoked,
        State::Cancelled,
        State::Expired,
        State::TransferredOut,
        State::RevokedPenalty,
        State::Other,
    ];

    pub fn from_code(code: u64) -> Option<State> {
        State::ALL.into_iter().find(|s| *s as u64 == code)
    }

    pub fn code(self) -> u64 {
        self as u64
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Revoked | State::Cancelled | State::Expired | State::RevokedPenalty
        )
    }

    /// The verification code a certificate in this state gets (`OK` only when valid).
    pub fn verification_code(self) -> Code {
        match self {
            State::Valid => Code::Ok,
            State::Suspended => Code::StatusSuspended,
            State::Revoked => Code::StatusRevoked,
            State::Cancelled => Code::StatusCancelled,
            State::Expired => Code::StatusExpired,
            State::TransferredOut => Code::StatusTransferredOut,
            State::RevokedPenalty => Code::StatusRevokedPenalty,
            State::Other => Code::StatusOther,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Valid => "valid",
            State::Suspended => "suspended",
            State::Revoked => "revoked",
            State::Cancelled => "cancelled",
            State::Expired => "expired",
            State::TransferredOut => "transferred out",
            State::RevokedPenalty => "revoked as penalty",
            State::Other => "other",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02} {}", self.code(), self.name())
    }
}

/// Where a terminate operation (05) leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Termination {
    Revoke,
    Cancel,
    RevokeAsPenalty,
    TransferOut,
}

impl Termination {
    pub fn target(self) -> State {
        match self {
            Termination::Revoke => State::Revoked,
            Termination::Cancel => State::Cancelled,
            Termination::RevokeAsPenalty => State::RevokedPenalty,
            Termination::TransferOut => State::TransferredOut,
        }
    }
}

/// An operation on an existing certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Suspend,
    Expire,
    Terminate(Termination),
    Unsuspend,
    Other,
    CancelTransferOut,
    /// The origin region accepts the transfer in of a certificate it transferred out
    /// (specs/sharing.md §5.2): it stays 06, and the transfer can no longer be cancelled.
    AcceptTransfer,
}

impl Operation {
    /// The operation code of specs/status.md §2.
    pub fn code(self) -> u64 {
        match self {
            Operation::Suspend => 3,
            Operation::Expire => 4,
            Operation::Terminate(_) => 5,
            Operation::Unsuspend => 6,
            Operation::Other => 7,
            Operation::CancelTransferOut => 10,
            Operation::AcceptTransfer => 11,
        }
    }
}

/// The operations that issue a successor to an earlier certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Succession {
    Renew = 2,
    TransferIn = 8,
    Change = 9,
}

impl Succession {
    pub fn from_code(code: u64) -> Option<Succession> {
        match code {
            2 => Some(Succession::Renew),
            8 => Some(Succession::TransferIn),
            9 => Some(Succession::Change),
            _ => None,
        }
    }

    pub fn code(self) -> u64 {
        self as u64
    }
}

fn refused(from: State, what: impl fmt::Display) -> Failure {
    Failure::new(
        Code::TransitionNotAllowed,
        format!("{what} is not allowed from state {from}"),
    )
}

/// The state after `op` on a certificate in state `from` (specs/status.md §3).
pub fn transition(from: State, op: Operation) -> Result<State, Failure> {
    use Operation as O;
    use State as S;
    let to = match (from, op) {
        (S::Valid, O::Suspend) => S::Suspended,
        (S::Suspended, O::Unsuspend) => S::Valid,
        (S::Valid | S::Suspended | S::Other, O::Expire) => S::Expired,
        (S::Valid | S::Suspended | S::Other, O::Terminate(t)) if t != Termination::TransferOut => {
            t.target()
        }
        (S::Valid, O::Terminate(Termination::TransferOut)) => S::TransferredOut,
        (S::Valid | S::Suspended | S::Other, O::Other) => S::Other,
        // Whether the transfer was accepted already, which stops a cancel, is the log's to know
        // (specs/log.md §7).
        (S::TransferredOut, O::CancelTransferOut) => S::Valid,
        (S::TransferredOut, O::AcceptTransfer) => S::TransferredOut,
        _ => return Err(refused(from, format_args!("operation {:02}", op.code()))),
    };
    Ok(to)
}

/// Checks the predecessor of a successor certificate and gives the predecessor's state afterwards
/// (specs/status.md §3, issuing operations).
pub fn succeed(predecessor: State, how: Succession) -> Result<State, Failure> {
    use State as S;
    match (how, predecessor) {
        (Succession::Renew, S::Valid) | (Succession::Change, S::Valid) => Ok(S::Cancelled),
        (Succession::Renew, S::Expired) => Ok(S::Expired),
        (Succession::TransferIn, S::TransferredOut) => Ok(S::TransferredOut),
        _ => Err(refused(
            predecessor,
            format_args!("issuing a successor by operation {:02}", how.code()),
        )),
    }
}

/// The reason the issuing node records when a promise lapses (§4): revoked, `promise_lapsed`.
pub const PROMISE_LAPSED: &str = "promise_lapsed";

/// A certificate's entry in a status list (specs/status.md §5): the draft's VALID, INVALID and
/// SUSPENDED, and application-specific values for the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListStatus {
    /// 0x00: valid, and no promise outstanding (none made, or fulfilled).
    Valid,
    /// 0x03: issued on a promise not (yet) fulfilled: valid before the promise deadline, lapsed
    /// from it, whether or not the lapse is recorded yet.
    PromiseOpen,
    /// Any other state: 0x01 revoked (the draft's INVALID), 0x02 suspended, 0x0B–0x0F the rest.
    State(State),
}

impl ListStatus {
    /// The list value (4 bits).
    pub fn value(self) -> u8 {
        match self {
            ListStatus::Valid | ListStatus::State(State::Valid) => 0x00,
            ListStatus::State(State::Revoked) => 0x01,
            ListStatus::State(State::Suspended) => 0x02,
            ListStatus::PromiseOpen => 0x03,
            ListStatus::State(State::Cancelled) => 0x0B,
            ListStatus::State(State::Expired) => 0x0C,
            ListStatus::State(State::TransferredOut) => 0x0D,
            ListStatus::State(State::RevokedPenalty) => 0x0E,
            ListStatus::State(State::Other) => 0x0F,
        }
    }

    /// The status a list value stands for; `None` for values the format reserves (0x04–0x0A).
    pub fn from_value(value: u8) -> Option<ListStatus> {
        Some(match value {
            0x00 => ListStatus::Valid,
            0x01 => ListStatus::State(State::Revoked),
            0x02 => ListStatus::State(State::Suspended),
            0x03 => ListStatus::PromiseOpen,
            0x0B => ListStatus::State(State::Cancelled),
            0x0C => ListStatus::State(State::Expired),
            0x0D => ListStatus::State(State::TransferredOut),
            0x0E => ListStatus::State(State::RevokedPenalty),
            0x0F => ListStatus::State(State::Other),
            _ => return None,
        })
    }

    /// What a list says of a certificate in `state`, issued on a promise (`promise`) fulfilled or
    /// not; `lapsed`: its revocation is the lapse of that promise (reason `promise_lapsed`, made
    /// at or after the deadline). A promise still open shows as [`ListStatus::PromiseOpen`] while
    /// the certificate is valid, and after its lapse was recorded — which a verifier reads as
    /// lapsed, the deadline being past; a certificate suspended or ended otherwise (a revocation
    /// before the deadline, whatever its reason says, among them) shows that state.
    pub fn of(state: State, promise: Option<bool>, lapsed: bool) -> ListStatus {
        let open = promise == Some(false);
        match state {
            State::Valid if open => ListStatus::PromiseOpen,
            State::Valid => ListStatus::Valid,
            State::Revoked if open && lapsed => ListStatus::PromiseOpen,
            other => ListStatus::State(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPS: [Operation; 10] = [
        Operation::Suspend,
        Operation::Expire,
        Operation::Terminate(Termination::Revoke),
        Operation::Terminate(Termination::Cancel),
        Operation::Terminate(Termination::RevokeAsPenalty),
        Operation::Terminate(Termination::TransferOut),
        Operation::Unsuspend,
        Operation::Other,
        Operation::CancelTransferOut,
        Operation::AcceptTransfer,
    ];

    #[test]
    fn terminal_states_allow_nothing() {
        for state in State::ALL.into_iter().filter(|s| s.is_terminal()) {
            for op in OPS {
                assert!(transition(state, op).is_err(), "{state} {op:?}");
            }
        }
    }

    #[test]
    fn table_matches_spec() {
        use Operation as O;
        use State as S;
        let allowed = [
            (S::Valid, O::Suspend, S::Suspended),
            (S::Valid, O::Expire, S::Expired),
            (S::Valid, O::Terminate(Termination::Revoke), S::Revoked),
            (
                S::Valid,
                O::Terminate(Termination::TransferOut),
                S::TransferredOut,
            ),
            (S::Valid, O::Other, S::Other),
            (S::Suspended, O::Unsuspend, S::Valid),
            (
                S::Suspended,
                O::Terminate(Termination::RevokeAsPenalty),
                S::RevokedPenalty,
            ),
            (S::Suspended, O::Expire, S::Expired),
            (S::TransferredOut, O::CancelTransferOut, S::Valid),
            (S::TransferredOut, O::AcceptTransfer, S::TransferredOut),
            (S::Other, O::Terminate(Termination::Cancel), S::Cancelled),
            (S::Other, O::Other, S::Other),
        ];
        for (from, op, to) in allowed {
            assert_eq!(transition(from, op).ok(), Some(to), "{from} {op:?}");
        }
        let refused = [
            (S::Valid, O::Unsuspend),
            (S::Valid, O::CancelTransferOut),
            (S::Valid, O::AcceptTransfer),
            (S::Suspended, O::AcceptTransfer),
            (S::Suspended, O::Suspend),
            (S::Suspended, O::Terminate(Termination::TransferOut)),
            (S::TransferredOut, O::Suspend),
            (S::TransferredOut, O::Terminate(Termination::Revoke)),
            (S::Other, O::Unsuspend),
        ];
        for (from, op) in refused {
            let code = transition(from, op).err().map(|f| f.code);
            assert_eq!(code, Some(Code::TransitionNotAllowed), "{from} {op:?}");
        }
    }

    #[test]
    fn successors() {
        assert_eq!(
            succeed(State::Valid, Succession::Renew).ok(),
            Some(State::Cancelled)
        );
        assert_eq!(
            succeed(State::Expired, Succession::Renew).ok(),
            Some(State::Expired)
        );
        assert_eq!(
            succeed(State::Valid, Succession::Change).ok(),
            Some(State::Cancelled)
        );
        assert!(succeed(State::Expired, Succession::Change).is_err());
        assert!(succeed(State::Valid, Succession::TransferIn).is_err());
        assert!(succeed(State::Revoked, Succession::Renew).is_err());
        assert_eq!(
            succeed(State::TransferredOut, Succession::TransferIn).ok(),
            Some(State::TransferredOut)
        );
    }

    #[test]
    fn codes_round_trip() {
        for state in State::ALL {
            assert_eq!(State::from_code(state.code()), Some(state));
        }
        assert_eq!(State::from_code(8), None);
    }

    #[test]
    fn every_list_value_reads_back_and_reserved_ones_do_not() {
        for value in 0..=0x0F_u8 {
            match ListStatus::from_value(value) {
                Some(status) => assert_eq!(status.value(), value),
                None => assert!((0x04..=0x0A).contains(&value), "{value:#x}"),
            }
        }
        assert_eq!(ListStatus::from_value(0x10), None);
        for state in State::ALL {
            let status = ListStatus::of(state, None, false);
            assert_eq!(ListStatus::from_value(status.value()), Some(status));
        }
    }

    #[test]
    fn an_open_promise_shows_until_fulfilled_and_after_its_lapse() {
        let of = ListStatus::of;
        let open = ListStatus::PromiseOpen;
        assert_eq!(of(State::Valid, Some(false), false), open);
        assert_eq!(of(State::Valid, Some(true), false), ListStatus::Valid);
        assert_eq!(of(State::Revoked, Some(false), true), open);
        assert_eq!(
            of(State::Revoked, Some(false), false),
            ListStatus::State(State::Revoked)
        );
        assert_eq!(
            of(State::Revoked, Some(true), true),
            ListStatus::State(State::Revoked)
        );
        assert_eq!(
            of(State::Suspended, Some(false), false),
            ListStatus::State(State::Suspended)
        );
    }
}
