//! The approval rules, on plain data: who may decide a challenge, and whether its approvals meet
//! the guardrail's threshold. No store, no clock: the service feeds them what it read.

use crate::challenges::{ApprovalDecision, ApprovalRecord};
use crate::identity::mapping::Authority;
use crate::policy::ApprovalPolicy;

/// Why someone may not decide a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request is theirs (their username, or another username they own).
    OwnRequest,
    /// They stepped up for it (an owner of the requesting service account).
    ConfirmedIt,
    /// None of their groups is named by the guardrail.
    NotAnApprover,
}

/// Whether `approver` (with `groups`, holding `authority` over the request's `subject`, if any)
/// may decide a challenge that `confirmed_by` stepped up for. `subject`, `approver` and
/// `confirmed_by` are person keys (`IdentityMap::person_of`), never raw account names: one human
/// under two names is one person here.
pub fn may_decide(
    rule: &ApprovalPolicy,
    subject: &str,
    approver: &str,
    groups: &[String],
    authority: Option<Authority>,
    confirmed_by: Option<&str>,
) -> Result<(), Refusal> {
    // An account named like the subject is refused even where the mapping gives that name to
    // someone else: whoever it is, they are too close to the request.
    if approver == subject || matches!(authority, Some(Authority::Subject | Authority::Alias)) {
        return Err(Refusal::OwnRequest);
    }
    if confirmed_by == Some(approver) {
        return Err(Refusal::ConfirmedIt);
    }
    if !rule
        .groups
        .iter()
        .flatten()
        .any(|g| groups.iter().any(|m| m == g))
    {
        return Err(Refusal::NotAnApprover);
    }
    Ok(())
}

/// How one inner group list stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStanding {
    /// The groups any of which satisfies it.
    pub groups: Vec<String>,
    /// Approvers it needs.
    pub needed: u32,
    /// Approvers counted towards it.
    pub approvers: Vec<String>,
}

impl ListStanding {
    /// Whether enough approvers count towards it.
    pub fn is_met(&self) -> bool {
        self.approvers.len() as u32 >= self.needed
    }
}

/// Where a challenge's approvals stand against its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Each inner list, in the rule's order.
    pub lists: Vec<ListStanding>,
}

impl Tally {
    /// Every list is met: the grant may be issued.
    pub fn is_met(&self) -> bool {
        self.lists.iter().all(ListStanding::is_met)
    }

    /// The lists still short of approvers.
    pub fn unmet(&self) -> impl Iterator<Item = &ListStanding> {
        self.lists.iter().filter(|l| !l.is_met())
    }
}

/// Count the approvals towards the rule's lists. A person counts once, towards one list, even
/// when their groups appear in several or they approved under two names: peer AND manager takes
/// two people. The assignment that
/// satisfies the most slots is found by augmenting paths (Kuhn's matching), so the order in which
/// people approved never blocks a grant that a different assignment would allow.
pub fn tally(rule: &ApprovalPolicy, approvals: &[ApprovalRecord]) -> Tally {
    let mut persons = std::collections::HashSet::new();
    let approvers: Vec<&ApprovalRecord> = approvals
        .iter()
        .filter(|a| a.decision == ApprovalDecision::Approve)
        .filter(|a| persons.insert(a.person.as_str()))
        .collect();
    // One slot per needed approver of each list.
    let slots: Vec<usize> = (0..rule.groups.len())
        .flat_map(|list| std::iter::repeat_n(list, rule.needed(list) as usize))
        .collect();
    let eligible = |approver: &ApprovalRecord, list: usize| {
        rule.groups[list]
            .iter()
            .any(|g| approver.groups.iter().any(|m| m == g))
    };
    let mut slot_holder: Vec<Option<usize>> = vec![None; slots.len()];
    for person in 0..approvers.len() {
        let mut seen = vec![false; slots.len()];
        assign(
            person,
            &approvers,
            &slots,
            &eligible,
            &mut slot_holder,
            &mut seen,
        );
    }
    let mut lists: Vec<ListStanding> = rule
        .groups
        .iter()
        .enumerate()
        .map(|(list, groups)| ListStanding {
            groups: groups.clone(),
            needed: rule.needed(list),
            approvers: Vec::new(),
        })
        .collect();
    for (slot, holder) in slot_holder.iter().enumerate() {
        if let Some(person) = holder {
            lists[slots[slot]]
                .approvers
                .push(approvers[*person].approver.clone());
        }
    }
    Tally { lists }
}

/// Find a slot for `person`, moving earlier holders to other slots they fit where needed.
fn assign(
    person: usize,
    approvers: &[&ApprovalRecord],
    slots: &[usize],
    eligible: &impl Fn(&ApprovalRecord, usize) -> bool,
    slot_holder: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for slot in 0..slots.len() {
        if seen[slot] || !eligible(approvers[person], slots[slot]) {
            continue;
        }
        seen[slot] = true;
        let free = match slot_holder[slot] {
            None => true,
            Some(other) => assign(other, approvers, slots, eligible, slot_holder, seen),
        };
        if free {
            slot_holder[slot] = Some(person);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ReasonRule;

    fn rule(groups: &[&[&str]], count: u32) -> ApprovalPolicy {
        ApprovalPolicy {
            groups: groups
                .iter()
                .map(|l| l.iter().map(|g| g.to_string()).collect())
                .collect(),
            count,
            counts: Vec::new(),
            timeout_secs: 3600,
            reason: ReasonRule::default(),
            break_glass: None,
        }
    }

    fn vote(approver: &str, groups: &[&str], decision: ApprovalDecision) -> ApprovalRecord {
        ApprovalRecord {
            challenge_code: "C".into(),
            person: approver.into(),
            approver: approver.into(),
            decision,
            reason: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            evidence: Default::default(),
            decided_at: 0,
            seal: String::new(),
        }
    }

    fn yes(approver: &str, groups: &[&str]) -> ApprovalRecord {
        vote(approver, groups, ApprovalDecision::Approve)
    }

    #[test]
    fn peer_and_manager_needs_both_lists() {
        let r = rule(&[&["oncall"], &["managers"]], 1);
        let peer = tally(&r, &[yes("bob", &["oncall"])]);
        assert!(!peer.is_met());
        assert_eq!(peer.unmet().next().unwrap().groups, vec!["managers"]);
        assert!(tally(&r, &[yes("bob", &["oncall"]), yes("carol", &["managers"])]).is_met());
    }

    #[test]
    fn one_person_in_both_groups_counts_once() {
        let r = rule(&[&["oncall"], &["managers"]], 1);
        assert!(!tally(&r, &[yes("dave", &["oncall", "managers"])]).is_met());
        // Dave first, then a peer: the matching moves Dave to the manager slot.
        let t = tally(
            &r,
            &[
                yes("dave", &["oncall", "managers"]),
                yes("bob", &["oncall"]),
            ],
        );
        assert!(t.is_met(), "{t:?}");
        assert_eq!(t.lists[0].approvers, vec!["bob"]);
        assert_eq!(t.lists[1].approvers, vec!["dave"]);
    }

    #[test]
    fn one_person_under_two_names_counts_once() {
        let r = rule(&[&["oncall"]], 2);
        let mut other_name = yes("oidc:alice@example.com", &["oncall"]);
        other_name.person = "alice".into();
        let t = tally(&r, &[yes("alice", &["oncall"]), other_name]);
        assert!(!t.is_met(), "{t:?}");
        assert_eq!(t.lists[0].approvers, vec!["alice"]);
    }

    #[test]
    fn count_is_per_list_and_rejections_never_count() {
        let r = rule(&[&["sre", "platform"]], 2);
        assert!(!tally(&r, &[yes("a", &["sre"])]).is_met());
        assert!(tally(&r, &[yes("a", &["sre"]), yes("b", &["platform"])]).is_met());
        let no = vote("b", &["platform"], ApprovalDecision::Reject);
        assert!(!tally(&r, &[yes("a", &["sre"]), no]).is_met());
    }

    #[test]
    fn each_list_may_need_its_own_count() {
        // Two peers and one manager.
        let mut r = rule(&[&["oncall"], &["managers"]], 1);
        r.counts = vec![2, 1];
        let one_peer = [yes("bob", &["oncall"]), yes("mia", &["managers"])];
        let t = tally(&r, &one_peer);
        assert!(!t.is_met(), "{t:?}");
        assert_eq!(t.unmet().next().unwrap().needed, 2);
        let mut two_peers = one_peer.to_vec();
        two_peers.push(yes("carol", &["oncall"]));
        assert!(tally(&r, &two_peers).is_met());
        assert_eq!(r.total_needed(), 3);
    }

    #[test]
    fn several_rules_are_met_only_together() {
        use crate::policy::BreakGlass;
        let mut peers = rule(&[&["oncall"], &["leads"]], 1);
        peers.break_glass = Some(BreakGlass {
            groups: vec!["oncall-leads".into(), "sre".into()],
            ttl_secs: 900,
        });
        let mut managers = rule(&[&["leads"], &["security"]], 2);
        managers.timeout_secs = 600;
        managers.reason.min_length = 20;
        let both = ApprovalPolicy::all_of(&[&peers, &managers]).unwrap();
        // `leads` is named by both: kept once, with the larger count.
        assert_eq!(both.groups.len(), 3);
        assert_eq!((both.needed(0), both.needed(1), both.needed(2)), (1, 2, 2));
        assert_eq!((both.timeout_secs, both.reason.min_length), (600, 20));
        // One rule has no break glass: neither has the combination.
        assert_eq!(both.break_glass, None);
        let one_each = [
            yes("bob", &["oncall"]),
            yes("lea", &["leads"]),
            yes("sam", &["security"]),
        ];
        assert!(tally(&peers, &one_each).is_met());
        assert!(!tally(&both, &one_each).is_met());
        let mut enough = one_each.to_vec();
        enough.extend([yes("leo", &["leads"]), yes("sue", &["security"])]);
        assert!(tally(&both, &enough).is_met());
        assert!(tally(&managers, &enough).is_met());

        let mut glass = managers.clone();
        glass.break_glass = Some(BreakGlass {
            groups: vec!["sre".into()],
            ttl_secs: 300,
        });
        let both = ApprovalPolicy::all_of(&[&peers, &glass]).unwrap();
        assert_eq!(
            both.break_glass,
            Some(BreakGlass {
                groups: vec!["sre".into()],
                ttl_secs: 300
            })
        );
    }

    #[test]
    fn who_may_decide() {
        let r = rule(&[&["oncall"]], 1);
        let g = vec!["oncall".to_string()];
        assert_eq!(
            may_decide(&r, "alice", "alice", &g, Some(Authority::Subject), None),
            Err(Refusal::OwnRequest)
        );
        assert_eq!(
            may_decide(&r, "alice", "alice", &g, None, None),
            Err(Refusal::OwnRequest)
        );
        assert_eq!(
            may_decide(&r, "alice", "alice", &g, Some(Authority::Alias), None),
            Err(Refusal::OwnRequest)
        );
        // An owner of the service account who stepped up for it may not; another owner may.
        assert_eq!(
            may_decide(
                &r,
                "alice",
                "olga",
                &g,
                Some(Authority::Owner),
                Some("olga")
            ),
            Err(Refusal::ConfirmedIt)
        );
        assert_eq!(
            may_decide(
                &r,
                "alice",
                "oscar",
                &g,
                Some(Authority::Owner),
                Some("olga")
            ),
            Ok(())
        );
        assert_eq!(
            may_decide(
                &r,
                "alice",
                "bob",
                &["dev".to_string()],
                None,
                Some("alice")
            ),
            Err(Refusal::NotAnApprover)
        );
    }
}
