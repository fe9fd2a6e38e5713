//! A software WebAuthn authenticator (ES256, user verified), enough to drive the portal's real
//! registration and sign-in ceremonies over HTTP. It attests with "none", or, like a security key,
//! with "packed" attestation under a batch certificate from a vendor root made here.

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One credential on a software authenticator.
pub struct SoftKey {
    key: EcdsaKeyPair,
    id: Vec<u8>,
    counter: u32,
    rp_id: String,
    origin: String,
    /// The model it claims and the batch certificate it attests with; `None` attests "none".
    attestation: Option<(uuid::Uuid, Batch)>,
}

/// An authenticator vendor: a root CA that issues batch attestation certificates.
pub struct Vendor {
    root: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// A batch attestation certificate (DER) and its private key (PKCS#8).
pub struct Batch {
    cert: Vec<u8>,
    key: Vec<u8>,
}

/// Subject and constraints of a packed attestation certificate (WebAuthn §8.2.1).
fn batch_params(model: &str) -> anyhow::Result<rcgen::CertificateParams> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    let dn = &mut params.distinguished_name;
    dn.push(rcgen::DnType::CountryName, "SE");
    dn.push(rcgen::DnType::OrganizationName, "Test Vendor AB");
    dn.push(
        rcgen::DnType::OrganizationalUnitName,
        "Authenticator Attestation",
    );
    dn.push(rcgen::DnType::CommonName, model);
    Ok(params)
}

impl Vendor {
    /// A vendor with a fresh root CA.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate()?;
        let root = params.self_signed(&key)?;
        Ok(Self { root, key })
    }

    /// The root certificate, as an allow-list names it.
    pub fn root_pem(&self) -> String {
        self.root.pem()
    }

    /// An allow-list (`kind: AuthenticatorAllowList`) approving `models` (AAGUID, name) under
    /// this vendor's root, inline.
    pub fn allow_list(&self, models: &[(&str, &str)]) -> String {
        let pem: String = self
            .root_pem()
            .lines()
            .map(|l| format!("            {l}\n"))
            .collect();
        let models: String = models
            .iter()
            .map(|(aaguid, name)| format!("        - {{aaguid: {aaguid}, name: {name}}}\n"))
            .collect();
        format!(
            "apiVersion: countersign.dev/v1alpha1\nkind: AuthenticatorAllowList\nspec:\n  vendors:\n    - name: Test vendor\n      roots:\n        - pem: |\n{pem}      models:\n{models}"
        )
    }

    /// A batch certificate for `model`, signed by this vendor's root.
    pub fn batch(&self, model: &str) -> anyhow::Result<Batch> {
        let key = rcgen::KeyPair::generate()?;
        let cert = batch_params(model)?.signed_by(&key, &self.root, &self.key)?;
        Ok(Batch {
            cert: cert.der().to_vec(),
            key: key.serialize_der(),
        })
    }
}

impl Batch {
    /// What a forger makes: the right subject layout, signed by itself instead of a vendor.
    pub fn self_signed(model: &str) -> anyhow::Result<Self> {
        let key = rcgen::KeyPair::generate()?;
        let cert = batch_params(model)?.self_signed(&key)?;
        Ok(Batch {
            cert: cert.der().to_vec(),
            key: key.serialize_der(),
        })
    }
}

/// Minimal CBOR, as much as attestation objects and COSE keys need.
enum Cbor<'a> {
    Int(i64),
    Text(&'a str),
    Bytes(&'a [u8]),
    Array(Vec<Cbor<'a>>),
    Map(Vec<(Cbor<'a>, Cbor<'a>)>),
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
    }
}

fn encode(value: &Cbor<'_>, out: &mut Vec<u8>) {
    match value {
        Cbor::Int(i) if *i >= 0 => head(out, 0, *i as u64),
        Cbor::Int(i) => head(out, 1, (-1 - *i) as u64),
        Cbor::Text(t) => {
            head(out, 3, t.len() as u64);
            out.extend(t.as_bytes());
        }
        Cbor::Bytes(b) => {
            head(out, 2, b.len() as u64);
            out.extend(*b);
        }
        Cbor::Array(items) => {
            head(out, 4, items.len() as u64);
            for item in items {
                encode(item, out);
            }
        }
        Cbor::Map(entries) => {
            head(out, 5, entries.len() as u64);
            for (k, v) in entries {
                encode(k, out);
                encode(v, out);
            }
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SoftKey {
    /// A new credential for the relying party at `origin` (`http://localhost:3000` → RP ID `localhost`).
    pub fn new(origin: &str) -> anyhow::Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("key generation failed"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow::anyhow!("key parsing failed"))?;
        let rp_id = url::Url::parse(origin)?
            .host_str()
            .context("origin without host")?
            .to_owned();
        Ok(Self {
            key,
            id: uuid::Uuid::new_v4().as_bytes().to_vec(),
            counter: 0,
            rp_id,
            origin: origin.to_owned(),
            attestation: None,
        })
    }

    /// A credential on a security key that claims model `aaguid` and attests with `batch`.
    pub fn attested(origin: &str, aaguid: &str, batch: Batch) -> anyhow::Result<Self> {
        let mut key = Self::new(origin)?;
        key.attestation = Some((uuid::Uuid::parse_str(aaguid)?, batch));
        Ok(key)
    }

    fn client_data(&self, kind: &str, options: &Value) -> anyhow::Result<Vec<u8>> {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .context("options without a challenge")?;
        Ok(serde_json::to_vec(&json!({
            "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false,
        }))?)
    }

    fn auth_data(&mut self, flags: u8, attested: bool) -> Vec<u8> {
        let mut data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend(self.counter.to_be_bytes());
        if attested {
            let point = self.key.public_key().as_ref();
            let mut cose = Vec::new();
            encode(
                &Cbor::Map(vec![
                    (Cbor::Int(1), Cbor::Int(2)),
                    (Cbor::Int(3), Cbor::Int(-7)),
                    (Cbor::Int(-1), Cbor::Int(1)),
                    (Cbor::Int(-2), Cbor::Bytes(&point[1..33])),
                    (Cbor::Int(-3), Cbor::Bytes(&point[33..65])),
                ]),
                &mut cose,
            );
            let aaguid = self
                .attestation
                .as_ref()
                .map_or([0u8; 16], |(aaguid, _)| *aaguid.as_bytes());
            data.extend(aaguid);
            data.extend((self.id.len() as u16).to_be_bytes());
            data.extend(&self.id);
            data.extend(cose);
        }
        data
    }

    /// Answer `navigator.credentials.create` options (as JSON from the server).
    pub fn register(&mut self, options: &Value) -> anyhow::Result<Value> {
        let client_data = self.client_data("webauthn.create", options)?;
        // User present, user verified, attested credential data.
        let auth_data = self.auth_data(0x01 | 0x04 | 0x40, true);
        let mut attestation = Vec::new();
        let signature;
        let (fmt, statement) = match &self.attestation {
            None => ("none", Cbor::Map(Vec::new())),
            Some((_, batch)) => {
                // Packed: the batch key signs authenticatorData || SHA-256(clientDataJSON).
                let rng = SystemRandom::new();
                let key =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &batch.key, &rng)
                        .map_err(|_| anyhow::anyhow!("batch key unreadable"))?;
                let mut signed = auth_data.clone();
                signed.extend(Sha256::digest(&client_data));
                signature = key
                    .sign(&rng, &signed)
                    .map_err(|_| anyhow::anyhow!("attestation signing failed"))?;
                (
                    "packed",
                    Cbor::Map(vec![
                        (Cbor::Text("alg"), Cbor::Int(-7)),
                        (Cbor::Text("sig"), Cbor::Bytes(signature.as_ref())),
                        (
                            Cbor::Text("x5c"),
                            Cbor::Array(vec![Cbor::Bytes(&batch.cert)]),
                        ),
                    ]),
                )
            }
        };
        encode(
            &Cbor::Map(vec![
                (Cbor::Text("fmt"), Cbor::Text(fmt)),
                (Cbor::Text("attStmt"), statement),
                (Cbor::Text("authData"), Cbor::Bytes(&auth_data)),
            ]),
            &mut attestation,
        );
        Ok(json!({
            "id": b64(&self.id), "rawId": b64(&self.id), "type": "public-key", "extensions": {},
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(&client_data),
                "transports": ["internal"],
            },
        }))
    }

    /// Answer `navigator.credentials.get` options.
    pub fn assert(&mut self, options: &Value) -> anyhow::Result<Value> {
        self.counter += 1;
        let client_data = self.client_data("webauthn.get", options)?;
        let auth_data = self.auth_data(0x01 | 0x04, false);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature = self
            .key
            .sign(&SystemRandom::new(), &signed)
            .map_err(|_| anyhow::anyhow!("signing failed"))?;
        Ok(json!({
            "id": b64(&self.id), "rawId": b64(&self.id), "type": "public-key", "extensions": {},
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(signature.as_ref()),
                "userHandle": null,
            },
        }))
    }
}
