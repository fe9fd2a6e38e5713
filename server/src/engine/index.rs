//! Which guardrails can match a request's resource, found without looking at the others: by API
//! group and resource name, plus the guardrails whose rules use wildcards (looked at for every
//! request). The engine walks only these, in policy order; explanations still walk every guardrail.

use std::collections::HashMap;

use crate::policy::Guardrail;

/// Guardrail positions by group and resource, each list ascending.
#[derive(Debug, Clone, Default)]
pub(super) struct ResourceIndex {
    by_group: HashMap<String, HashMap<String, Vec<u32>>>,
    /// Guardrails that may match any resource (no resource clause, `*` groups or resources).
    any: Vec<u32>,
}

impl ResourceIndex {
    /// The index of `guardrails`.
    pub(super) fn new(guardrails: &[Guardrail]) -> Self {
        let mut index = Self::default();
        for (position, g) in guardrails.iter().enumerate() {
            let position = position as u32;
            let rules = &g.matcher.resources;
            let wild = rules.is_empty()
                || rules.iter().any(|r| {
                    r.api_groups.is_none() || r.resources.iter().any(|p| p.resource.is_none())
                });
            if wild {
                index.any.push(position);
                continue;
            }
            for rule in rules {
                for group in rule.api_groups.iter().flatten() {
                    for pattern in &rule.resources {
                        if let Some(resource) = &pattern.resource {
                            let list = index
                                .by_group
                                .entry(group.clone())
                                .or_default()
                                .entry(resource.clone())
                                .or_default();
                            if list.last() != Some(&position) {
                                list.push(position);
                            }
                        }
                    }
                }
            }
        }
        index
    }

    /// The positions of the guardrails that may match `group`/`resource`, ascending, once each.
    pub(super) fn candidates<'a>(&'a self, group: &str, resource: &str) -> Merge<'a> {
        let named = self
            .by_group
            .get(group)
            .and_then(|r| r.get(resource))
            .map_or(&[][..], Vec::as_slice);
        Merge {
            a: named,
            b: &self.any,
        }
    }
}

/// Two ascending lists merged, without allocating.
pub(super) struct Merge<'a> {
    a: &'a [u32],
    b: &'a [u32],
}

impl Iterator for Merge<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let next = match (self.a.first(), self.b.first()) {
            (Some(&x), Some(&y)) if x < y => {
                self.a = &self.a[1..];
                x
            }
            (Some(&x), Some(&y)) if y < x => {
                self.b = &self.b[1..];
                y
            }
            (Some(&x), Some(_)) => {
                self.a = &self.a[1..];
                self.b = &self.b[1..];
                x
            }
            (Some(&x), None) => {
                self.a = &self.a[1..];
                x
            }
            (None, Some(&y)) => {
                self.b = &self.b[1..];
                y
            }
            (None, None) => return None,
        };
        Some(next as usize)
    }
}
