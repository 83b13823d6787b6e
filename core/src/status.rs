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
}
