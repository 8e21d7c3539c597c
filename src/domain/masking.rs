//! Masking of personal data for roles without `see_pii`. Applied wherever data leaves the
//! server (HTTP, WebSocket, search, comparison, export), always through these functions.

use crate::domain::roles::{Permission, Role};

/// What a role may see of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Masking {
    /// Personal data as stored.
    Clear,
    /// Email reduced to its first letter and domain, phone to its last 4 digits, address and
    /// birthday hidden.
    Masked,
}

pub const HIDDEN: &str = "***";

impl Masking {
    pub fn for_role(role: Role) -> Masking {
        if role.can(Permission::SeePii) {
            Masking::Clear
        } else {
            Masking::Masked
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Masking::Clear => "clear",
            Masking::Masked => "masked",
        }
    }

    pub fn email(self, email: &str) -> String {
        match self {
            Masking::Clear => email.to_owned(),
            Masking::Masked => mask_email(email),
        }
    }

    pub fn phone(self, phone: &str) -> String {
        match self {
            Masking::Clear => phone.to_owned(),
            Masking::Masked => mask_phone(phone),
        }
    }

    /// Address lines, postal codes and birthdays: all or nothing.
    pub fn hidden(self, value: &str) -> String {
        match self {
            Masking::Clear => value.to_owned(),
            Masking::Masked => HIDDEN.to_owned(),
        }
    }
}

/// `john.doe@example.com` → `j***@example.com`. Without an `@` nothing is revealed.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => match local.chars().next() {
            Some(first) => format!("{first}{HIDDEN}@{domain}"),
            None => format!("{HIDDEN}@{domain}"),
        },
        None => HIDDEN.to_owned(),
    }
}

/// `+1 (555) 010-2030` → `***-2030`. A number of four digits or fewer reveals nothing.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() <= 4 {
        return HIDDEN.to_owned();
    }
    let last4: String = digits[digits.len() - 4..].iter().collect();
    format!("{HIDDEN}-{last4}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(mask_email("john@example.com"), "j***@example.com");
        assert_eq!(mask_email("@example.com"), "***@example.com");
        assert_eq!(mask_email("no-at-sign"), "***");
        assert_eq!(mask_email("Łukasz@poczta.pl"), "Ł***@poczta.pl");
        assert_eq!(mask_phone("+1 (555) 010-2030"), "***-2030");
        assert_eq!(mask_phone("1234"), "***");
        assert_eq!(mask_phone(""), "***");
    }

    #[test]
    fn roles_mask_as_designed() {
        assert_eq!(Masking::for_role(Role::Admin), Masking::Clear);
        assert_eq!(Masking::for_role(Role::Support), Masking::Clear);
        assert_eq!(Masking::for_role(Role::Marketing), Masking::Masked);
        assert_eq!(Masking::for_role(Role::Analyst), Masking::Masked);
        assert_eq!(Masking::Masked.hidden("1 Main St"), HIDDEN);
        assert_eq!(Masking::Clear.hidden("1 Main St"), "1 Main St");
    }

    proptest! {
        /// Of the local part, only its first character survives; nothing else of it appears.
        #[test]
        fn email_reveals_at_most_the_first_letter(local in "\\PC{0,30}", domain in "[a-z0-9.-]{1,20}") {
            let local = local.replace('@', "");
            let masked = mask_email(&format!("{local}@{domain}"));
            let expected_prefix: String = local.chars().take(1).collect();
            prop_assert_eq!(masked, format!("{expected_prefix}{HIDDEN}@{domain}"));
        }

        /// Any string at all: the output is one of the two masked shapes, never the input's middle.
        #[test]
        fn email_masking_of_arbitrary_input(input in "\\PC{0,40}") {
            let masked = mask_email(&input);
            let revealed: String = masked.replacen(HIDDEN, "", 1);
            match input.rsplit_once('@') {
                Some((local, domain)) => {
                    let first: String = local.chars().take(1).collect();
                    prop_assert_eq!(revealed, format!("{first}@{domain}"));
                }
                None => prop_assert_eq!(revealed, ""),
            }
        }

        /// The only digits shown are the last four, and only when there are more than four.
        #[test]
        fn phone_reveals_at_most_the_last_four_digits(input in "[0-9 +()\\-.a-z]{0,30}") {
            let masked = mask_phone(&input);
            let digits: String = input.chars().filter(char::is_ascii_digit).collect();
            let shown: String = masked.chars().filter(char::is_ascii_digit).collect();
            if digits.len() > 4 {
                prop_assert_eq!(shown, &digits[digits.len() - 4..]);
            } else {
                prop_assert_eq!(shown, "");
            }
            prop_assert!(masked.starts_with(HIDDEN));
        }
    }
}
