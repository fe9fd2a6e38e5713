use rand::Rng;

/// Letters and digits that cannot be mistaken for one another when read aloud or retyped.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// A fresh 8-character challenge code (40 bits from the OS RNG).
pub fn new_code() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..8)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Whether `code` could be a challenge code (checked before any lookup).
pub fn is_code(code: &str) -> bool {
    code.len() == 8 && code.bytes().all(|b| ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_well_formed_and_distinct() {
        let a = new_code();
        assert!(is_code(&a));
        assert_ne!(a, new_code());
        assert!(!is_code("K7Q2M9X0"));
        assert!(!is_code("short"));
    }
}
