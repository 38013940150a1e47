//! A minimal reader of X.509 certificates (DER): the few fields an
//! [`Identity`](super::Identity) reports and checks (serial, validity,
//! common name, whether it is self-signed, the public key, the names).
//!
//! It reads by slicing with checked access only: any input, truncated or
//! corrupt, gives `None`, never a panic. It checks no signature: rustls
//! verifies chains, this only reads what a certificate says.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::base::time::Civil;

const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const BOOLEAN: u8 = 0x01;
/// `[0] EXPLICIT Version`.
const VERSION: u8 = 0xa0;
/// `[3] EXPLICIT Extensions`.
const EXTENSIONS: u8 = 0xa3;
/// `dNSName [2] IA5String` and `iPAddress [7] OCTET STRING` of a `GeneralName`.
const DNS_NAME: u8 = 0x82;
const IP_ADDRESS: u8 = 0x87;

/// `id-at-commonName`, 2.5.4.3.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// `id-ce-subjectAltName`, 2.5.29.17.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// What this crate reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Certificate {
    /// Lowercase hex bytes joined by `:`, as Vault's `serial_number`
    /// (`3a:0f:...`), without DER's leading sign byte.
    pub(crate) serial: String,
    /// Seconds since the Unix epoch.
    pub(crate) not_before: i64,
    /// Seconds since the Unix epoch.
    pub(crate) not_after: i64,
    /// The subject's (last) common name, when it has one that decodes.
    pub(crate) common_name: Option<String>,
    /// Subject and issuer are the same bytes: a root (or a self-signed leaf).
    pub(crate) self_signed: bool,
    /// The whole `SubjectPublicKeyInfo` element, as a signing key reports it.
    pub(crate) spki: Vec<u8>,
    /// The subject alternative names' DNS names.
    pub(crate) dns_names: Vec<String>,
    /// The subject alternative names' IP addresses.
    pub(crate) ip_addresses: Vec<IpAddr>,
}

impl Certificate {
    /// Reads a certificate from its DER bytes; `None` when they are not one
    /// (or have bytes after it).
    pub(crate) fn parse(der: &[u8]) -> Option<Certificate> {
        let mut outer = Der(der);
        let certificate = outer.expect(SEQUENCE)?.contents;
        if !outer.is_empty() {
            return None;
        }
        let mut certificate = Der(certificate);
        let mut tbs = Der(certificate.expect(SEQUENCE)?.contents);
        if tbs.peek() == Some(VERSION) {
            tbs.next()?;
        }
        let serial = serial_text(tbs.expect(INTEGER)?.contents)?;
        tbs.expect(SEQUENCE)?; // the signature algorithm
        let issuer = tbs.expect(SEQUENCE)?.whole;
        let mut validity = Der(tbs.expect(SEQUENCE)?.contents);
        let not_before = time(validity.next()?)?;
        let not_after = time(validity.next()?)?;
        let subject = tbs.expect(SEQUENCE)?;
        let spki = tbs.expect(SEQUENCE)?.whole.to_vec();
        let mut names = (Vec::new(), Vec::new());
        // Optional unique identifiers ([1], [2]), then the extensions ([3]).
        while let Some(element) = tbs.next() {
            if element.tag == EXTENSIONS {
                names = alt_names(element.contents)?;
            }
        }
        // The signature algorithm and value close the certificate.
        certificate.expect(SEQUENCE)?;
        certificate.expect(BIT_STRING)?;
        Some(Certificate {
            serial,
            not_before,
            not_after,
            common_name: common_name(subject.contents)?,
            self_signed: subject.whole == issuer,
            spki,
            dns_names: names.0,
            ip_addresses: names.1,
        })
    }
}

/// One DER element: its tag, its contents, and the whole of it (tag and
/// length included).
#[derive(Clone, Copy)]
struct Element<'a> {
    tag: u8,
    contents: &'a [u8],
    whole: &'a [u8],
}

/// A cursor over consecutive DER elements.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// The next element, or `None` at the end or on a malformed one.
    fn next(&mut self) -> Option<Element<'a>> {
        let input = self.0;
        let (&tag, rest) = input.split_first()?;
        if tag & 0x1f == 0x1f {
            return None; // multi-byte tags: none in a certificate
        }
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return None; // indefinite, or longer than any certificate
            }
            let (bytes, rest) = rest.split_at_checked(count)?;
            let len = bytes.iter().fold(0u64, |n, b| n << 8 | u64::from(*b));
            (usize::try_from(len).ok()?, rest)
        };
        let (contents, rest) = rest.split_at_checked(len)?;
        let header = input.len().checked_sub(rest.len())?.checked_sub(len)?;
        let whole = input.get(..header.checked_add(len)?)?;
        self.0 = rest;
        Some(Element {
            tag,
            contents,
            whole,
        })
    }

    /// The next element, when it has `tag`.
    fn expect(&mut self, tag: u8) -> Option<Element<'a>> {
        self.next().filter(|e| e.tag == tag)
    }
}

/// Vault's form of a serial: lowercase hex bytes joined by `:`, without
/// the `00` DER puts before a first byte whose high bit is set (Vault
/// prints Go's `big.Int` bytes, OpenSSL the same digits in upper case).
fn serial_text(contents: &[u8]) -> Option<String> {
    let bytes = match contents {
        [] => return None,
        [0, rest @ ..] if !rest.is_empty() => rest,
        all => all,
    };
    let mut text = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        let sep = if i == 0 { "" } else { ":" };
        let _ = write!(text, "{sep}{b:02x}");
    }
    Some(text)
}

/// A `Time`: `UTCTime` (`YYMMDDHHMMSSZ`, years 1950-2049) or
/// `GeneralizedTime` (`YYYYMMDDHHMMSSZ`), as seconds since the epoch.
fn time(element: Element<'_>) -> Option<i64> {
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    let (year, rest) = match (element.tag, element.contents) {
        (UTC_TIME, [y @ .., _, _, _, _, _, _, _, _, _, _, b'Z']) if y.len() == 2 => {
            let yy = digits(y)?;
            (
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
                element.contents.get(2..12)?,
            )
        }
        (GENERALIZED_TIME, [y @ .., _, _, _, _, _, _, _, _, _, _, b'Z']) if y.len() == 4 => {
            (digits(y)?, element.contents.get(4..14)?)
        }
        _ => return None,
    };
    let field = |i: usize| digits(rest.get(i..i + 2)?);
    Civil {
        year,
        month: field(0)?,
        day: field(2)?,
        hour: field(4)?,
        minute: field(6)?,
        second: field(8)?,
    }
    .unix()
}

/// The last common name of a `Name` (Go and OpenSSL show the last one);
/// `Some(None)` when it has none that decodes, `None` when malformed.
fn common_name(name: &[u8]) -> Option<Option<String>> {
    let mut found = None;
    let mut rdns = Der(name);
    while !rdns.is_empty() {
        let mut attributes = Der(rdns.expect(SET)?.contents);
        while !attributes.is_empty() {
            let mut attribute = Der(attributes.expect(SEQUENCE)?.contents);
            let oid = attribute.expect(OID)?.contents;
            let value = attribute.next()?;
            if oid == COMMON_NAME {
                if let Some(text) = directory_string(value) {
                    found = Some(text);
                }
            }
        }
    }
    Some(found)
}

/// A `DirectoryString` (or `IA5String`) as text.
fn directory_string(value: Element<'_>) -> Option<String> {
    match value.tag {
        // UTF8String, PrintableString, IA5String
        0x0c | 0x13 | 0x16 => String::from_utf8(value.contents.to_vec()).ok(),
        // TeletexString: Latin-1 in practice
        0x14 => Some(value.contents.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE
        0x1e => {
            let units = value.contents.chunks(2).map(|c| match c {
                [hi, lo] => Some(u16::from_be_bytes([*hi, *lo])),
                _ => None,
            });
            let units: Option<Vec<u16>> = units.collect();
            String::from_utf16(&units?).ok()
        }
        _ => None,
    }
}

/// The DNS names and IP addresses of the subject alternative name
/// extension, if any, from the `[3]` extensions element.
fn alt_names(extensions: &[u8]) -> Option<(Vec<String>, Vec<IpAddr>)> {
    let (mut dns, mut ips) = (Vec::new(), Vec::new());
    let mut outer = Der(extensions);
    let mut list = Der(outer.expect(SEQUENCE)?.contents);
    while !list.is_empty() {
        let mut extension = Der(list.expect(SEQUENCE)?.contents);
        let oid = extension.expect(OID)?.contents;
        if extension.peek() == Some(BOOLEAN) {
            extension.next()?; // critical
        }
        let value = extension.expect(OCTET_STRING)?.contents;
        if oid != SUBJECT_ALT_NAME {
            continue;
        }
        let mut value = Der(value);
        let mut names = Der(value.expect(SEQUENCE)?.contents);
        while let Some(name) = names.next() {
            match (name.tag, name.contents) {
                (DNS_NAME, text) => dns.push(String::from_utf8(text.to_vec()).ok()?),
                (IP_ADDRESS, &[a, b, c, d]) => ips.push(IpAddr::V4(Ipv4Addr::new(a, b, c, d))),
                (IP_ADDRESS, bytes) => {
                    let octets: [u8; 16] = bytes.try_into().ok()?;
                    ips.push(IpAddr::V6(Ipv6Addr::from(octets)));
                }
                _ => {}
            }
        }
    }
    Some((dns, ips))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    fn der(pem: &str) -> Vec<u8> {
        match CertificateDer::from_pem_slice(pem.as_bytes()) {
            Ok(cert) => cert.to_vec(),
            Err(e) => panic!("fixture: {e}"),
        }
    }

    use crate::tls::fixtures::{EC, ED25519, INTERMEDIATE, ROOT, RSA};

    fn parse(pem: &str) -> Certificate {
        match Certificate::parse(&der(pem)) {
            Some(c) => c,
            None => panic!("the fixture does not parse"),
        }
    }

    #[test]
    fn serials_are_what_openssl_shows_lowercased_and_colon_joined() {
        // `openssl x509 -noout -serial -in rsa.pem`: serial=9A0F3C5E...; its
        // DER has a leading 00 (the high bit is set), which Vault drops too.
        assert_eq!(
            parse(RSA).serial,
            "9a:0f:3c:5e:7b:1d:2f:4a:6c:8e:0a:1b:3c:5d:7e:9f:01:23:45:67"
        );
        assert_eq!(
            parse(EC).serial,
            "3a:0f:bc:11:d2:e4:f6:07:18:29:3a:4b:5c:6d:7e:8f:90:a1:b2:c3"
        );
        assert_eq!(parse(ED25519).serial, "5e:2d:0c:1b");
        assert_eq!(parse(ROOT).serial, "01");
        assert_eq!(serial_text(&[0]).as_deref(), Some("00"));
        assert_eq!(serial_text(&[]), None);
    }

    #[test]
    fn validity_names_and_self_signed() {
        let ec = parse(EC);
        // notBefore in UTCTime (before 2050), notAfter in GeneralizedTime.
        assert_eq!(crate::base::time::rfc3339(ec.not_after).len(), 20);
        assert!(ec.not_after - ec.not_before > 99 * 365 * 86_400);
        assert!(crate::base::time::rfc3339(ec.not_after).starts_with("2126-"));
        assert_eq!(ec.common_name.as_deref(), Some("gateway.internal"));
        assert_eq!(ec.dns_names, ["gateway.internal", "localhost"]);
        assert_eq!(ec.ip_addresses, [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        assert!(!ec.self_signed);
        assert_eq!(
            parse(ED25519).common_name.as_deref(),
            Some("ed25519.internal")
        );
        assert!(parse(ROOT).self_signed);
        assert!(!parse(INTERMEDIATE).self_signed);
        assert_eq!(parse(ROOT).common_name.as_deref(), Some("Test Root CA"));
        assert!(parse(ROOT).dns_names.is_empty());
    }

    #[test]
    fn both_time_forms() {
        let at = |tag, text: &[u8]| {
            time(Element {
                tag,
                contents: text,
                whole: text,
            })
        };
        assert_eq!(at(UTC_TIME, b"261207100000Z"), Some(1_796_637_600));
        assert_eq!(
            at(GENERALIZED_TIME, b"20261207100000Z"),
            Some(1_796_637_600)
        );
        assert_eq!(at(UTC_TIME, b"500101000000Z"), Some(-631_152_000));
        assert_eq!(at(UTC_TIME, b"261207100000"), None);
        assert_eq!(at(UTC_TIME, b"2612071000+0Z"), None);
        assert_eq!(at(GENERALIZED_TIME, b"261207100000Z"), None);
        assert_eq!(at(GENERALIZED_TIME, b"20261307100000Z"), None);
        assert_eq!(at(OCTET_STRING, b"20261207100000Z"), None);
    }

    /// Any truncation and any one-byte change of a real certificate (every
    /// value of every byte of one, every bit flip and the length-byte edges
    /// of the others): no panic, and a truncated one never parses.
    #[test]
    fn corrupt_der_never_panics() {
        const EDGES: [u8; 8] = [0x00, 0x01, 0x7f, 0x80, 0x81, 0x84, 0x85, 0xff];
        for pem in [EC, RSA, ED25519, ROOT, INTERMEDIATE] {
            let good = der(pem);
            assert!(Certificate::parse(&good).is_some());
            for len in 0..good.len() {
                assert_eq!(Certificate::parse(&good[..len]), None, "length {len}");
            }
            let mut longer = good.clone();
            longer.push(0);
            assert_eq!(Certificate::parse(&longer), None);
            let mut bad = good.clone();
            for i in 0..good.len() {
                let flips = (0..8).map(|bit| good[i] ^ 1 << bit);
                if pem == EC {
                    (0..=u8::MAX).for_each(|v| parse_with(&mut bad, i, v));
                } else {
                    flips.chain(EDGES).for_each(|v| parse_with(&mut bad, i, v));
                }
                bad[i] = good[i];
            }
        }
    }

    fn parse_with(der: &mut [u8], i: usize, value: u8) {
        der[i] = value;
        let _ = Certificate::parse(der);
    }
}
