//! Money for display: integer cents as `12.34 USD`.

pub fn format_cents(cents: i64, currency: &str) -> String {
    let amount = format!(
        "{}{}.{:02}",
        if cents < 0 { "-" } else { "" },
        cents.abs() / 100,
        cents.abs() % 100
    );
    if currency.is_empty() {
        amount
    } else {
        format!("{amount} {currency}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_cents(123_456, "USD"), "1234.56 USD");
        assert_eq!(format_cents(-5, "EUR"), "-0.05 EUR");
        assert_eq!(format_cents(100, ""), "1.00");
    }
}
