//! Admin roles and what each may do: DESIGN.md's permission table, kept here as data so that
//! handlers ask `role.can(permission)` instead of scattering role checks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Support,
    Marketing,
    Analyst,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Support, Role::Marketing, Role::Analyst];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Support => "support",
            Role::Marketing => "marketing",
            Role::Analyst => "analyst",
        }
    }

    fn column(self) -> usize {
        match self {
            Role::Admin => 0,
            Role::Support => 1,
            Role::Marketing => 2,
            Role::Analyst => 3,
        }
    }

    pub fn can(self, permission: Permission) -> bool {
        PERMISSION_TABLE
            .iter()
            .find(|(p, _)| *p == permission)
            .is_some_and(|(_, grants)| grants[self.column()])
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role '{s}' (expected admin, support, marketing or analyst)")
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    ViewCustomer,
    SeePii,
    WriteNotes,
    SeeOthersPrivateNotes,
    AssignTags,
    CreateTags,
    AssignSegments,
    AdjustLoyalty,
    SendEmail,
    CreateTicket,
    Export,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ViewCustomer => "view_customer",
            Permission::SeePii => "see_pii",
            Permission::WriteNotes => "write_notes",
            Permission::SeeOthersPrivateNotes => "see_others_private_notes",
            Permission::AssignTags => "assign_tags",
            Permission::CreateTags => "create_tags",
            Permission::AssignSegments => "assign_segments",
            Permission::AdjustLoyalty => "adjust_loyalty",
            Permission::SendEmail => "send_email",
            Permission::CreateTicket => "create_ticket",
            Permission::Export => "export",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Columns: admin, support, marketing, analyst — as in DESIGN.md.
pub const PERMISSION_TABLE: [(Permission, [bool; 4]); 11] = [
    (Permission::ViewCustomer, [true, true, true, true]),
    (Permission::SeePii, [true, true, false, false]),
    (Permission::WriteNotes, [true, true, true, false]),
    (
        Permission::SeeOthersPrivateNotes,
        [true, false, false, false],
    ),
    (Permission::AssignTags, [true, true, true, false]),
    (Permission::CreateTags, [true, false, true, false]),
    (Permission::AssignSegments, [true, false, true, false]),
    (Permission::AdjustLoyalty, [true, true, false, false]),
    (Permission::SendEmail, [true, true, true, false]),
    (Permission::CreateTicket, [true, true, false, false]),
    (Permission::Export, [true, true, false, true]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;
    use Role::*;

    #[test]
    fn table_matches_design() {
        let expect = |role: Role, allowed: &[Permission]| {
            for (p, _) in PERMISSION_TABLE {
                assert_eq!(role.can(p), allowed.contains(&p), "{role} / {p}");
            }
        };
        expect(
            Admin,
            &[
                ViewCustomer,
                SeePii,
                WriteNotes,
                SeeOthersPrivateNotes,
                AssignTags,
                CreateTags,
                AssignSegments,
                AdjustLoyalty,
                SendEmail,
                CreateTicket,
                Export,
            ],
        );
        expect(
            Support,
            &[
                ViewCustomer,
                SeePii,
                WriteNotes,
                AssignTags,
                AdjustLoyalty,
                SendEmail,
                CreateTicket,
                Export,
            ],
        );
        expect(
            Marketing,
            &[
                ViewCustomer,
                WriteNotes,
                AssignTags,
                CreateTags,
                AssignSegments,
                SendEmail,
            ],
        );
        expect(Analyst, &[ViewCustomer, Export]);
    }

    #[test]
    fn every_permission_has_one_row() {
        for (i, (p, _)) in PERMISSION_TABLE.iter().enumerate() {
            assert_eq!(
                PERMISSION_TABLE.iter().filter(|(q, _)| q == p).count(),
                1,
                "row {i}"
            );
        }
    }

    #[test]
    fn roles_parse_and_print() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        let err = "owner".parse::<Role>().unwrap_err();
        assert!(err.contains("owner"), "{err}");
    }
}
