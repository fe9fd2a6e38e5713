//! The administrator's authenticator allow-list: which security-key models may be registered, and
//! the vendors' attestation roots that vouch for them.
//!
//! A model's AAGUID alone proves nothing (any software authenticator can claim one), so each model
//! is listed under the vendor root its attestation certificate must chain to. webauthn-rs checks
//! the chain and that the attested AAGUID belongs to that root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use webauthn_rs::prelude::{AttestationCaList, AttestationCaListBuilder, Uuid};
use x509_parser::pem::Pem;

use super::document::{self, DocumentError};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    vendors: Vec<VendorEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VendorEntry {
    name: String,
    roots: Vec<RootEntry>,
    models: Vec<ModelEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RootEntry {
    /// PEM file, relative to the allow-list.
    file: Option<String>,
    /// PEM text inline.
    pem: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelEntry {
    aaguid: String,
    name: String,
}

/// The loaded allow-list: vendor roots and the models each may attest.
#[derive(Debug, Clone)]
pub struct AuthenticatorAllowList {
    cas: AttestationCaList,
    /// AAGUID → model name, for messages and the account page.
    models: BTreeMap<Uuid, String>,
}

impl AuthenticatorAllowList {
    /// Read an allow-list (YAML, `kind: AuthenticatorAllowList`); root files are relative to it.
    pub fn load(path: &Path) -> Result<Self, DocumentError> {
        Self::parse(&document::read(path)?, path)
    }

    /// Parse an allow-list document; `path` names it in errors and anchors relative root files.
    pub fn parse(text: &str, path: &Path) -> Result<Self, DocumentError> {
        let shown = path.display().to_string();
        let invalid = |field: String, message: &str| document::invalid(&shown, field, message);
        let spec: Spec = document::parse(
            text,
            &shown,
            "AuthenticatorAllowList",
            " (expected `kind: AuthenticatorAllowList` listing each vendor's attestation roots \
             and models; see docs/authenticators.md)",
        )?;
        if spec.vendors.is_empty() {
            return Err(invalid(
                "spec.vendors".into(),
                "lists no vendor, so no key could be registered",
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut builder = AttestationCaListBuilder::new();
        let mut models = BTreeMap::new();
        for (i, vendor) in spec.vendors.iter().enumerate() {
            let at = format!("spec.vendors[{i}]");
            if vendor.name.trim().is_empty() {
                return Err(invalid(format!("{at}.name"), "must not be empty"));
            }
            if vendor.roots.is_empty() {
                return Err(invalid(
                    format!("{at}.roots"),
                    "name at least one attestation root certificate of this vendor",
                ));
            }
            if vendor.models.is_empty() {
                return Err(invalid(
                    format!("{at}.models"),
                    "name at least one model (AAGUID) this vendor's roots may attest",
                ));
            }
            let mut vendor_models = Vec::new();
            for (j, model) in vendor.models.iter().enumerate() {
                let field = format!("{at}.models[{j}]");
                let aaguid = Uuid::parse_str(model.aaguid.trim()).map_err(|_| {
                    invalid(
                        format!("{field}.aaguid"),
                        &format!("`{}` is not an AAGUID", model.aaguid),
                    )
                })?;
                if aaguid.is_nil() {
                    return Err(invalid(
                        format!("{field}.aaguid"),
                        "the all-zero AAGUID means \"not disclosed\" and cannot be approved",
                    ));
                }
                if model.name.trim().is_empty() {
                    return Err(invalid(format!("{field}.name"), "must not be empty"));
                }
                let name = model.name.trim().to_owned();
                vendor_models.push((aaguid, name.clone()));
                models.insert(aaguid, name);
            }
            for (j, root) in vendor.roots.iter().enumerate() {
                let field = format!("{at}.roots[{j}]");
                let pem = match (&root.file, &root.pem) {
                    (Some(file), None) => {
                        let full = base.join(file);
                        std::fs::read(&full).map_err(|e| {
                            invalid(format!("{field}.file"), &format!("{}: {e}", full.display()))
                        })?
                    }
                    (None, Some(pem)) => pem.as_bytes().to_vec(),
                    _ => return Err(invalid(field, "give exactly one of `file` or `pem`")),
                };
                let roots = root_certificates(&pem).map_err(|m| invalid(field.clone(), &m))?;
                for der in roots {
                    for (aaguid, name) in &vendor_models {
                        builder
                            .insert_device_der(&der, *aaguid, name.clone(), BTreeMap::new())
                            .map_err(|e| invalid(field.clone(), &e.to_string()))?;
                    }
                }
            }
        }
        Ok(Self {
            cas: builder.build(),
            models,
        })
    }

    /// The vendor roots with their models, as webauthn-rs takes them.
    pub fn cas(&self) -> &AttestationCaList {
        &self.cas
    }

    /// The approved model's name, if this AAGUID is on the list.
    pub fn model(&self, aaguid: &Uuid) -> Option<&str> {
        self.models.get(aaguid).map(String::as_str)
    }

    /// Every approved model's name, for the account page.
    pub fn model_names(&self) -> Vec<String> {
        let names: BTreeSet<&String> = self.models.values().collect();
        names.into_iter().cloned().collect()
    }
}

/// The DER of every certificate in `pem`, each checked to be a usable root: a CA that may sign
/// certificates and has not expired (a leaf here could never anchor a chain).
fn root_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut found = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| format!("not PEM: {e}"))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        check_root(&block)?;
        found.push(block.contents);
    }
    if found.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(found)
}

fn check_root(block: &Pem) -> Result<(), String> {
    let cert = block
        .parse_x509()
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let subject = cert.subject().to_string();
    let signs_certificates = cert
        .key_usage()
        .ok()
        .flatten()
        .is_some_and(|ku| ku.value.key_cert_sign());
    if !cert.is_ca() || !signs_certificates {
        return Err(format!(
            "{subject} is not a CA certificate (basicConstraints CA and keyUsage keyCertSign), so no attestation can chain to it"
        ));
    }
    if !cert.validity().is_valid() {
        return Err(format!(
            "{subject} is outside its validity period ({} to {})",
            cert.validity().not_before,
            cert.validity().not_after
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A vendor root (CA, keyCertSign) as PEM.
    pub(crate) fn root_pem(name: &str) -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    fn indent(pem: &str) -> String {
        pem.lines().map(|l| format!("            {l}\n")).collect()
    }

    /// A list approving the YubiKey 5 series under a made-up Yubico root.
    pub(crate) fn yubikey_list() -> AuthenticatorAllowList {
        let doc = format!(
            "apiVersion: countersign.dev/v1alpha1\nkind: AuthenticatorAllowList\nspec:\n  vendors:\n    - name: Yubico\n      roots:\n        - pem: |\n{}      models:\n        - {{aaguid: cb69481e-8ff7-4039-93ec-0a2729a154a8, name: YubiKey 5 Series}}\n        - {{aaguid: ee882879721c491397753dfcce97072a, name: YubiKey 5 NFC}}\n",
            indent(&root_pem("Yubico Test Root"))
        );
        AuthenticatorAllowList::parse(&doc, Path::new("keys.yaml")).unwrap()
    }

    fn error(doc: &str) -> String {
        AuthenticatorAllowList::parse(doc, Path::new("keys.yaml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_list_names_models_under_their_vendor_roots() {
        let list = yubikey_list();
        assert_eq!(list.cas().len(), 1);
        let nfc = Uuid::parse_str("ee882879-721c-4913-9775-3dfcce97072a").unwrap();
        assert_eq!(list.model(&nfc), Some("YubiKey 5 NFC"));
        assert_eq!(list.model(&Uuid::new_v4()), None);
        assert_eq!(
            list.model_names(),
            vec!["YubiKey 5 NFC".to_owned(), "YubiKey 5 Series".to_owned()]
        );
        let ca = list.cas().cas().values().next().unwrap();
        assert_eq!(ca.aaguids().len(), 2);
        assert!(!ca.blanket_allow());
    }

    #[test]
    fn root_files_are_read_relative_to_the_list() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root.pem"), root_pem("Vendor Root")).unwrap();
        let path = dir.path().join("keys.yaml");
        std::fs::write(
            &path,
            "apiVersion: countersign.dev/v1alpha1\nkind: AuthenticatorAllowList\nspec:\n  vendors:\n    - name: V\n      roots: [{file: root.pem}]\n      models: [{aaguid: 01020304-0506-0708-0102-030405060708, name: Model}]\n",
        )
        .unwrap();
        let list = AuthenticatorAllowList::load(&path).unwrap();
        assert_eq!(list.cas().len(), 1);
        let missing = "apiVersion: countersign.dev/v1alpha1\nkind: AuthenticatorAllowList\nspec:\n  vendors:\n    - name: V\n      roots: [{file: nowhere.pem}]\n      models: [{aaguid: 01020304-0506-0708-0102-030405060708, name: Model}]\n";
        let e = AuthenticatorAllowList::parse(missing, &path)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("spec.vendors[0].roots[0].file") && e.contains("nowhere.pem"),
            "{e}"
        );
    }

    #[test]
    fn unusable_lists_are_refused_with_the_place_and_the_reason() {
        // The old format (AAGUIDs only) says what is needed now.
        let e = error("cb69481e-8ff7-4039-93ec-0a2729a154a8\n");
        assert!(
            e.contains("kind: AuthenticatorAllowList") && e.contains("roots"),
            "{e}"
        );
        let head = "apiVersion: countersign.dev/v1alpha1\nkind: AuthenticatorAllowList\nspec:\n  vendors:\n";
        assert!(error(&format!("{head}    []\n")).contains("lists no vendor"));
        let model = "      models: [{aaguid: cb69481e-8ff7-4039-93ec-0a2729a154a8, name: Y}]\n";
        assert!(
            error(&format!("{head}    - name: Y\n      roots: []\n{model}"))
                .contains("spec.vendors[0].roots: name at least one")
        );
        // A leaf certificate can never anchor a chain.
        let leaf = {
            let mut params = rcgen::CertificateParams::new(vec!["x".to_owned()]).unwrap();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "Batch");
            let key = rcgen::KeyPair::generate().unwrap();
            params.self_signed(&key).unwrap().pem()
        };
        let e = error(&format!(
            "{head}    - name: Y\n      roots:\n        - pem: |\n{}{model}",
            indent(&leaf)
        ));
        assert!(
            e.contains("spec.vendors[0].roots[0]: CN=Batch is not a CA certificate"),
            "{e}"
        );
        let root = indent(&root_pem("R"));
        let e = error(&format!(
            "{head}    - name: Y\n      roots:\n        - pem: |\n{root}      models: [{{aaguid: yubikey, name: Y}}]\n"
        ));
        assert!(
            e.contains("spec.vendors[0].models[0].aaguid: `yubikey` is not an AAGUID"),
            "{e}"
        );
        let e = error(&format!(
            "{head}    - name: Y\n      roots:\n        - pem: |\n{root}      models: [{{aaguid: 00000000-0000-0000-0000-000000000000, name: Y}}]\n"
        ));
        assert!(e.contains("not disclosed"), "{e}");
        let e = error(&format!(
            "{head}    - name: Y\n      roots:\n        - pem: \"not a certificate\"\n{model}"
        ));
        assert!(e.contains("holds no PEM certificate"), "{e}");
        let e = error(&format!(
            "{head}    - name: Y\n      roots:\n        - {{pem: x, file: y}}\n{model}"
        ));
        assert!(e.contains("exactly one of `file` or `pem`"), "{e}");
    }
}
