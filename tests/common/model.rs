//! A plainly correct reference model of the validator's policies, on BTree
//! collections: it remembers every accepted nonce and applies each policy's
//! rule as written. Shared by the property tests and the fuzz targets.
#![allow(dead_code)]

use monotonic_nonce::{Policy, Rejection};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub struct Model {
    pub policy: Policy,
    pub ceiling: u64,
    pub accounts: BTreeMap<u8, BTreeSet<u64>>,
}

impl Model {
    pub fn new(policy: Policy, ceiling: u64) -> Self {
        Self { policy, ceiling, accounts: BTreeMap::new() }
    }

    pub fn last_nonce(&self, account: u8) -> Option<u64> {
        self.accounts.get(&account).and_then(|s| s.last().copied())
    }

    /// The verdict for `nonce`; recorded when `record` and accepted.
    pub fn validate(&mut self, account: u8, nonce: u64, record: bool) -> Result<(), Rejection> {
        if nonce == 0 {
            return Err(Rejection::NotPositive);
        }
        if nonce > self.ceiling {
            return Err(Rejection::AboveCeiling { ceiling: self.ceiling, attempted_nonce: nonce });
        }
        let seen = self.accounts.entry(account).or_default();
        if let Some(&last_nonce) = seen.last() {
            let already = Rejection::AlreadyUsed { last_nonce, attempted_nonce: nonce };
            let low = Rejection::TooLow { last_nonce, attempted_nonce: nonce };
            match self.policy {
                Policy::Strict if nonce == last_nonce => return Err(already),
                Policy::Strict if nonce < last_nonce => return Err(low),
                Policy::HighestK(k) => {
                    let top: Vec<u64> = seen.iter().rev().take(k).copied().collect();
                    if top.contains(&nonce) {
                        return Err(already);
                    }
                    if top.len() == k && nonce < *top.last().unwrap() {
                        return Err(low);
                    }
                }
                Policy::Window(w) if nonce <= last_nonce => {
                    if last_nonce - nonce > w {
                        return Err(low);
                    }
                    if seen.contains(&nonce) {
                        return Err(already);
                    }
                }
                _ => {}
            }
        }
        if record {
            seen.insert(nonce);
        } else if seen.is_empty() {
            self.accounts.remove(&account);
        }
        Ok(())
    }
}
