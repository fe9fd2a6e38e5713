//! Names of well-known authenticator models by AAGUID, so the account page says "YubiKey 5 Series"
//! rather than a UUID. A name here is what the authenticator claims, not proven: only the
//! allow-list's attestation check proves a model (`authenticators.rs`).

/// AAGUIDs from the community list of passkey providers and security keys.
const KNOWN: &[(&str, &str)] = &[
    (
        "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4",
        "Google Password Manager",
    ),
    ("adce0002-35bc-c60a-648b-0b25f1f05503", "Chrome on Mac"),
    ("fbfc3007-154e-4ecc-8c0b-6e020557d7bd", "iCloud Keychain"),
    (
        "dd4ec289-e01d-41c9-bb89-70fa845d4bf2",
        "iCloud Keychain (managed)",
    ),
    ("08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"),
    ("9ddd1817-af5a-4672-a2b9-3e3dd95000a9", "Windows Hello"),
    ("6028b017-b1d4-4c02-b4b3-afcdafc96bb2", "Windows Hello"),
    ("bada5566-a7aa-401f-bd96-45619a55120d", "1Password"),
    ("d548826e-79b4-db40-a3d8-11116f7e8349", "Bitwarden"),
    ("531126d6-e717-415c-9320-3d9aa6981239", "Dashlane"),
    ("53414d53-554e-4700-0000-000000000000", "Samsung Pass"),
    ("50726f74-6f6e-5061-7373-50726f746f6e", "Proton Pass"),
    ("fdb141b2-5d84-443e-8a35-4698c205a502", "KeePassXC"),
    ("cb69481e-8ff7-4039-93ec-0a2729a154a8", "YubiKey 5 Series"),
    ("ee882879-721c-4913-9775-3dfcce97072a", "YubiKey 5 Series"),
    (
        "fa2b99dc-9e39-4257-8f92-4a30d23c4118",
        "YubiKey 5 Series with NFC",
    ),
    (
        "2fc0579f-8113-47ea-b116-bb5a8db9202a",
        "YubiKey 5 Series with NFC",
    ),
    ("c5ef55ff-ad9a-4b9f-b580-adebafe026d0", "YubiKey 5Ci"),
    (
        "73bb0cd4-e502-49b8-9c6f-b59445bf720b",
        "YubiKey 5 FIPS Series",
    ),
    (
        "149a2021-8ef6-4133-96b8-81f8d5b7f1f5",
        "Security Key by Yubico with NFC",
    ),
    (
        "6d44ba9b-f6ec-2e49-b930-0c8fe920cb73",
        "Security Key by Yubico with NFC",
    ),
    (
        "b92c3f9a-c014-4056-887f-140a2501163b",
        "Security Key by Yubico",
    ),
    // Chromium's virtual authenticator (DevTools, WebDriver, the browser tests).
    (
        "01020304-0506-0708-0102-030405060708",
        "Chromium virtual authenticator",
    ),
];

/// The model's name for a well-known AAGUID.
pub fn known_model(aaguid: &str) -> Option<&'static str> {
    let aaguid = aaguid.to_ascii_lowercase();
    KNOWN
        .iter()
        .find(|(id, _)| *id == aaguid)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_models_are_named_and_others_are_not() {
        assert_eq!(
            known_model("CB69481E-8FF7-4039-93EC-0A2729A154A8"),
            Some("YubiKey 5 Series")
        );
        assert_eq!(known_model("00000000-0000-0000-0000-000000000000"), None);
        for (id, _) in KNOWN {
            assert_eq!(id.len(), 36, "{id}");
        }
    }
}
