//! Verification receipts (specs/log.md §8): what a node answers when it verifies a certificate, signed
//! per batch. Each receipt item is a leaf of an RFC 6962 tree over its batch; the batch's root goes
//! into a `receipts` log entry signed by the region root, and that signed entry is the batch's
//! signature. One signature serves a whole batch, so signing never caps verification throughput.

use ciborium::Value;

use crate::cbor::{self, Key, Reader};
use crate::codes::{Code, Failure};
use crate::encode::{bytes, entry, map_bytes, text, uint};
use crate::envelope::{BuildError, Envelope, Kind};
use crate::fields::{Bad, Fields};
use crate::ids::{Identifier, RegionCode};
use crate::keys::PublicKey;
use crate::log::entry::{Act, LogEntry};
use crate::log::proof::{MAX_PROOF, MemoryTree, leaf_hash, verify_inclusion};
use crate::status::State;
use crate::suite::Suite;
use crate::values::Time;

/// Largest receipt item accepted, in bytes.
pub const MAX_ITEM: usize = 1024;
/// Largest receipt accepted, in bytes (an item, a path, and a log entry).
pub const MAX_RECEIPT: usize = 70_000;

/// What the node found when it verified one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptItem {
    /// The verifying node's region.
    pub region: RegionCode,
    pub at: Time,
    /// The certificate digest (encoding.md §4) of what was verified.
    pub digest: [u8; 32],
    /// Once the claims decoded.
    pub id: Option<Identifier>,
    pub valid: bool,
    pub code: Code,
    /// The certificate's state in the verifying node's log, when it issued the certificate.
    pub state: Option<State>,
    /// The region of the party that asked, when another region asked.
    pub requester: Option<RegionCode>,
    /// The requester's nonce, binding the receipt to its request.
    pub nonce: Option<[u8; 16]>,
}

impl ReceiptItem {
    pub fn encode(&self) -> Result<Vec<u8>, BuildError> {
        let mut entries = vec![
            entry("v", uint(1)),
            entry("rc", text(self.region.as_str())),
            entry("at", uint(self.at.seconds())),
            entry("d", bytes(&self.digest)),
            entry("ok", Value::Bool(self.valid)),
            entry("c", text(self.code.as_str())),
        ];
        if let Some(id) = &self.id {
            entries.push(entry("id", text(id.as_str())));
        }
        if let Some(state) = self.state {
            entries.push(entry("st", uint(state.code())));
        }
        if let Some(requester) = &self.requester {
            entries.push(entry("rq", text(requester.as_str())));
        }
        if let Some(nonce) = &self.nonce {
            entries.push(entry("n", bytes(nonce)));
        }
        map_bytes(entries)
    }

    pub fn decode(bytes: &[u8]) -> Result<ReceiptItem, Failure> {
        cbor::check(bytes, MAX_ITEM as u64, false)?;
        read_item(bytes).map_err(|b| b.into_failure(Code::ClaimsInvalid))
    }
}

fn read_item(bytes: &[u8]) -> Result<ReceiptItem, Bad> {
    let mut f = Fields::whole(bytes)?;
    f.version_1()?;
    let region =
        RegionCode::parse(f.text(Key::Text("rc"))?).map_err(|e| Bad::new(e.to_string()))?;
    let at = f.time(Key::Text("at"))?;
    let digest = f.fixed::<32>(Key::Text("d"))?;
    let valid = f.bool(Key::Text("ok"))?;
    let code = Code::parse(f.text(Key::Text("c"))?).ok_or_else(|| Bad::new("unknown code"))?;
    let id = f
        .optional_text(Key::Text("id"))?
        .map(|i| Identifier::parse(i).map_err(|e| Bad::new(e.to_string())))
        .transpose()?;
    let state = f
        .optional_uint(Key::Text("st"))?
        .map(|s| State::from_code(s).ok_or_else(|| Bad::new("unknown state")))
        .transpose()?;
    let requester = f
        .optional_text(Key::Text("rq"))?
        .map(|r| RegionCode::parse(r).map_err(|e| Bad::new(e.to_string())))
        .transpose()?;
    let nonce = f.optional_fixed::<16>(Key::Text("n"))?;
    f.finish()?;
    if valid != (code == Code::Ok) {
        return Err(Bad::new("a receipt is valid exactly when its code is OK"));
    }
    Ok(ReceiptItem {
        region,
        at,
        digest,
        id,
        valid,
        code,
        state,
        requester,
        nonce,
    })
}

/// A receipt as handed to a verifier: its item, the item's path to the batch root, and the signed
/// `receipts` log entry that commits to that root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationReceipt {
    pub item: Vec<u8>,
    /// The item's index in its batch.
    pub index: u64,
    pub path: Vec<[u8; 32]>,
    /// The `receipts` log entry, as signed by the region root.
    pub entry: Vec<u8>,
    /// The entry's index in the region's log.
    pub log_index: u64,
}

/// A batch's tree: its root, and each item's path to it.
pub struct Batch {
    pub root: [u8; 32],
    pub paths: Vec<Vec<[u8; 32]>>,
}

/// Builds the tree of one batch, in the tree hash of the region's suite.
pub fn batch(suite: Suite, items: &[Vec<u8>]) -> Result<Batch, Failure> {
    let tree_error =
        |e: crate::log::proof::TreeError| Failure::new(Code::ClaimsInvalid, e.to_string());
    let mut tree = MemoryTree::new(suite);
    for item in items {
        tree.append(item).map_err(tree_error)?;
    }
    let size = tree.size();
    let root = tree.root(size).map_err(tree_error)?;
    let paths = (0..size)
        .map(|i| tree.inclusion_proof(i, size).map_err(tree_error))
        .collect::<Result<_, _>>()?;
    Ok(Batch { root, paths })
}

impl VerificationReceipt {
    /// CBOR: `{"item": bstr, "i": uint, "path": [bstr32…], "e": bstr, "li": uint}`.
    pub fn encode(&self) -> Result<Vec<u8>, BuildError> {
        map_bytes(vec![
            entry("item", bytes(&self.item)),
            entry("i", uint(self.index)),
            entry(
                "path",
                Value::Array(self.path.iter().map(|h| bytes(h)).collect()),
            ),
            entry("e", bytes(&self.entry)),
            entry("li", uint(self.log_index)),
        ])
    }

    pub fn decode(bytes: &[u8]) -> Result<VerificationReceipt, Failure> {
        cbor::check(bytes, MAX_RECEIPT as u64, false)?;
        read_receipt(bytes).map_err(|b| b.into_failure(Code::ClaimsInvalid))
    }

    /// Checks the receipt against the verifying region's root key and returns its item: the
    /// entry is a `receipts` entry of the item's region signed by `region_root`, and the item's
    /// path leads to the entry's root.
    pub fn verify(&self, region_root: &PublicKey) -> Result<ReceiptItem, Failure> {
        let item = ReceiptItem::decode(&self.item)?;
        // log.md §8: the envelope, its signer and signature, and only then what it says.
        let envelope = Envelope::open(&self.entry, Kind::LogEntry)?;
        if envelope.kid != region_root.kid() {
            return Err(Failure::new(
                Code::KidUnknown,
                "receipt batch not signed by the region root",
            ));
        }
        envelope.verify(region_root)?;
        let entry = LogEntry::from_payload(envelope.payload)?;
        let LogEntry {
            region,
            act: Act::Receipts { count, root, .. },
            ..
        } = entry
        else {
            return Err(Failure::new(Code::ClaimsInvalid, "not a receipts entry"));
        };
        if region != item.region {
            return Err(Failure::new(
                Code::ClaimsInvalid,
                "receipt item and batch of different regions",
            ));
        }
        let suite = region_root.suite();
        if !verify_inclusion(
            suite,
            leaf_hash(suite, &self.item),
            self.index,
            count,
            root,
            &self.path,
        ) {
            return Err(Failure::new(
                Code::SignatureInvalid,
                "receipt item not in its batch",
            ));
        }
        Ok(item)
    }
}

fn read_receipt(bytes: &[u8]) -> Result<VerificationReceipt, Bad> {
    let mut f = Fields::whole(bytes)?;
    let item = f.bytes(Key::Text("item"))?.to_vec();
    let index = f.uint(Key::Text("i"))?;
    let path = f.array(
        Key::Text("path"),
        "an array of 32-byte hashes",
        |r: &mut Reader<'_>| r.bytes().and_then(|b| <[u8; 32]>::try_from(b).ok()),
    )?;
    if path.len() > MAX_PROOF {
        return Err(Bad::new("path longer than any tree's"));
    }
    let entry = f.bytes(Key::Text("e"))?.to_vec();
    let log_index = f.uint(Key::Text("li"))?;
    f.finish()?;
    Ok(VerificationReceipt {
        item,
        index,
        path,
        entry,
        log_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{key, region_code, time};

    fn item(n: u8) -> Result<ReceiptItem, Box<dyn std::error::Error>> {
        Ok(ReceiptItem {
            region: region_code("341200")?,
            at: time(1_800_000_000)?,
            digest: [n; 32],
            id: None,
            valid: n.is_multiple_of(2),
            code: if n.is_multiple_of(2) {
                Code::Ok
            } else {
                Code::StatusRevoked
            },
            state: (!n.is_multiple_of(2)).then_some(State::Revoked),
            requester: (n == 3).then(|| region_code("370100")).transpose()?,
            nonce: (n == 4).then_some([7; 16]),
        })
    }

    #[test]
    fn every_receipt_of_a_batch_verifies_and_a_flip_fails() -> Result<(), Box<dyn std::error::Error>>
    {
        let root_key = key("region 341200 root")?;
        let items: Vec<Vec<u8>> = (0..5)
            .map(|n| {
                item(n)
                    .map_err(|e| e.to_string())?
                    .encode()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, String>>()?;
        let Batch { root, paths } = batch(root_key.suite(), &items)?;
        let entry = LogEntry {
            region: region_code("341200")?,
            at: time(1_800_000_000)?,
            act: Act::Receipts {
                count: 5,
                root,
                cross_region: 1,
            },
        }
        .sign(&root_key)?;
        for (n, (bytes, path)) in items.iter().zip(paths).enumerate() {
            let receipt = VerificationReceipt {
                item: bytes.clone(),
                index: n as u64,
                path,
                entry: entry.clone(),
                log_index: 42,
            };
            let decoded = VerificationReceipt::decode(&receipt.encode()?)?;
            assert_eq!(decoded, receipt);
            assert_eq!(decoded.verify(root_key.public())?, item(n as u8)?);

            let mut flipped = receipt.clone();
            flipped.item[3] ^= 1;
            assert!(flipped.verify(root_key.public()).is_err());
            let mut moved = receipt.clone();
            moved.index = (moved.index + 1) % 5;
            assert!(moved.verify(root_key.public()).is_err());
            let other = key("region 370100 root")?;
            assert_eq!(
                receipt.verify(other.public()).map_err(|f| f.code),
                Err(Code::KidUnknown)
            );
        }
        Ok(())
    }

    #[test]
    fn an_item_whose_verdict_contradicts_its_code_is_refused()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut bad = item(0)?;
        bad.code = Code::Expired;
        assert!(ReceiptItem::decode(&bad.encode()?).is_err());
        Ok(())
    }
}
