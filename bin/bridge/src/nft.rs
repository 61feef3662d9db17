//! nftables state: outbound masquerading (`ipMasq`) and MAC spoof checking (`macspoofchk`),
//! driven through the `nft` binary (one transaction per change).
//!
//! What is installed (tables and chains are created on first use and shared by every
//! attachment; they stay when empty):
//!
//! ```text
//! table ip cni_bridge_nat {
//!     chain postrouting {
//!         type nat hook postrouting priority srcnat; policy accept;
//!         ip saddr 10.88.0.2 ip daddr != { 10.88.0.0/16, 224.0.0.0/4 } masquerade comment "cni-bridge net=N id=C if=I"
//!     }
//! }
//! table ip6 cni_bridge_nat { chain postrouting { ... ip6 saddr ... ip6 daddr != { <subnet>, ff00::/8 } masquerade comment "..." } }
//! table bridge cni_bridge_macspoof {
//!     chain prerouting {
//!         type filter hook prerouting priority -300; policy accept;
//!         iifname "veth1a2b3c4d" ether saddr != 0a:58:0a:58:00:02 drop comment "..."
//!     }
//! }
//! ```
//!
//! Every rule of an attachment carries the same comment, built from the network name, the
//! container ID and the interface name ([`comment`]); DEL and GC find rules by that comment and
//! delete them by handle.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cni_spec::Vars;
use ipnetwork::IpNetwork;
use serde_json::Value;

/// The masquerade tables' name (in families `ip` and `ip6`).
pub const NAT_TABLE: &str = "cni_bridge_nat";
/// The masquerade chain.
pub const NAT_CHAIN: &str = "postrouting";
/// The MAC spoof check table's name (family `bridge`).
pub const SPOOF_TABLE: &str = "cni_bridge_macspoof";
/// The MAC spoof check chain.
pub const SPOOF_CHAIN: &str = "prerouting";
/// nftables' limit on a rule comment.
const COMMENT_MAX: usize = 127;
/// The start of every comment we write.
pub const COMMENT_PREFIX: &str = "cni-bridge net=";

/// The (family, table, chain) triples we own.
pub const CHAINS: [(&str, &str, &str); 3] = [
    ("ip", NAT_TABLE, NAT_CHAIN),
    ("ip6", NAT_TABLE, NAT_CHAIN),
    ("bridge", SPOOF_TABLE, SPOOF_CHAIN),
];

/// What can go wrong with nftables.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error(
        "the nft binary (nftables) is needed for {what} but was not found in PATH ({path}) nor in /usr/sbin or /sbin: install nftables"
    )]
    Missing { what: String, path: String },
    #[error("cannot run {nft}: {source}")]
    Spawn {
        nft: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{nft} {args} failed ({status}): {stderr}")]
    Failed {
        nft: String,
        args: String,
        status: String,
        stderr: String,
    },
    #[error("{nft} printed JSON this plugin does not understand: {msg}")]
    Decode { nft: String, msg: String },
}

/// Network names longer than this appear hashed in comments.
const NET_NAME_MAX: usize = 24;

/// The network part of a comment: the name, or `#<16 hex digits>` of its FNV-1a hash when it
/// is longer than 24 bytes (so that a 64-character container ID and a 15-byte ifname fit).
fn net_part(network: &str) -> String {
    if network.len() <= NET_NAME_MAX {
        network.to_owned()
    } else {
        format!("#{:016x}", netns::fnv1a_64(network.as_bytes()))
    }
}

/// The comment tagging every rule of one attachment:
/// `cni-bridge net=<network> id=<container ID> if=<ifname>`. Names and IDs are CNI identifiers
/// (no spaces or quotes). A network name over 24 bytes is replaced by its hash, and a container
/// ID that still does not fit nftables' 127 bytes too.
pub fn comment(network: &str, container_id: &str, ifname: &str) -> String {
    let head = network_prefix(network);
    let full = format!("{head}id={container_id} if={ifname}");
    if full.len() <= COMMENT_MAX {
        return full;
    }
    format!(
        "{head}id=#{:016x} if={ifname}",
        netns::fnv1a_64(container_id.as_bytes())
    )
}

/// The comment prefix shared by every attachment of `network` (for GC).
pub fn network_prefix(network: &str) -> String {
    format!("{COMMENT_PREFIX}{} ", net_part(network))
}

/// One rule we installed: where it is and its handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub family: String,
    pub table: String,
    pub chain: String,
    pub handle: u64,
    pub comment: String,
}

/// A located `nft` binary, run with the plugin's environment.
#[derive(Debug, Clone)]
pub struct Nft {
    path: PathBuf,
    vars: Vars,
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

impl Nft {
    /// Finds `nft` in the plugin's `PATH` (`vars`, the invocation's environment), then in
    /// `/usr/sbin` and `/sbin`; it runs with that environment. `what` names the feature that
    /// needs it, for the error.
    pub fn find(vars: &Vars, what: &str) -> Result<Nft, NftError> {
        let path_var = vars.get("PATH").unwrap_or_default();
        path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .chain(["/usr/sbin", "/sbin"])
            .map(|d| Path::new(d).join("nft"))
            .find(|p| is_executable(p))
            .map(|path| Nft {
                path,
                vars: vars.clone(),
            })
            .ok_or_else(|| NftError::Missing {
                what: what.to_owned(),
                path: path_var.to_owned(),
            })
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// Runs `nft <args>` with `input` on stdin; returns stdout.
    fn run(&self, args: &[&str], input: Option<&str>) -> Result<String, NftError> {
        let mut cmd = Command::new(&self.path);
        cmd.env_clear()
            .envs(self.vars.iter())
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| NftError::Spawn {
            nft: self.name(),
            source,
        })?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            // nft reads the whole script before acting; a failed write shows in its status
            let _ = stdin.write_all(text.as_bytes());
        }
        let out = child.wait_with_output().map_err(|source| NftError::Spawn {
            nft: self.name(),
            source,
        })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let mut shown = args.join(" ");
        if let Some(text) = input {
            shown.push_str(&format!(" <<< {:?}", text.trim_end()));
        }
        Err(NftError::Failed {
            nft: self.name(),
            args: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }

    /// Applies a script (`nft -f -`) as one transaction.
    pub fn apply(&self, script: &str) -> Result<(), NftError> {
        self.run(&["-f", "-"], Some(script)).map(|_| ())
    }

    /// Our rules in every table we own, with their handles. Missing tables or chains are
    /// empty, not errors.
    pub fn rules(&self) -> Result<Vec<Rule>, NftError> {
        let mut out = Vec::new();
        for (family, table, chain) in CHAINS {
            let text = match self.run(&["-j", "-a", "list", "chain", family, table, chain], None) {
                Ok(t) => t,
                Err(NftError::Failed { stderr, .. })
                    if stderr.contains("No such file or directory") =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let v: Value = serde_json::from_str(&text).map_err(|e| NftError::Decode {
                nft: self.name(),
                msg: e.to_string(),
            })?;
            let items = v
                .get("nftables")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for item in items {
                let Some(rule) = item.get("rule") else {
                    continue;
                };
                let (Some(handle), Some(comment)) = (
                    rule.get("handle").and_then(Value::as_u64),
                    rule.get("comment").and_then(Value::as_str),
                ) else {
                    continue;
                };
                if !comment.starts_with(COMMENT_PREFIX) {
                    continue;
                }
                out.push(Rule {
                    family: family.to_owned(),
                    table: table.to_owned(),
                    chain: chain.to_owned(),
                    handle,
                    comment: comment.to_owned(),
                });
            }
        }
        Ok(out)
    }

    /// Deletes rules by handle in one transaction. If that fails because a rule vanished
    /// meanwhile (a concurrent DEL or GC), the remaining ones are looked up and deleted again.
    pub fn delete(&self, rules: &[Rule]) -> Result<(), NftError> {
        if rules.is_empty() {
            return Ok(());
        }
        let script = |rules: &[Rule]| {
            rules
                .iter()
                .map(|r| {
                    format!(
                        "delete rule {} {} {} handle {}\n",
                        r.family, r.table, r.chain, r.handle
                    )
                })
                .collect::<String>()
        };
        match self.apply(&script(rules)) {
            Ok(()) => Ok(()),
            Err(first) => {
                let now = self.rules()?;
                let left: Vec<Rule> = rules.iter().filter(|r| now.contains(r)).cloned().collect();
                if left.len() == rules.len() {
                    return Err(first);
                }
                if left.is_empty() {
                    return Ok(());
                }
                self.apply(&script(&left))
            }
        }
    }

    /// Deletes every rule carrying `comment`.
    pub fn delete_tagged(&self, comment: &str) -> Result<usize, NftError> {
        let ours: Vec<Rule> = self
            .rules()?
            .into_iter()
            .filter(|r| r.comment == comment)
            .collect();
        self.delete(&ours)?;
        Ok(ours.len())
    }
}

/// The script adding the masquerade rules of one attachment: one rule per address, excluding
/// its own subnet and multicast.
pub fn masquerade_script(addresses: &[IpNetwork], comment: &str) -> String {
    let mut s = String::new();
    for fam in ["ip", "ip6"] {
        let mine: Vec<&IpNetwork> = addresses
            .iter()
            .filter(|a| a.is_ipv4() == (fam == "ip"))
            .collect();
        if mine.is_empty() {
            continue;
        }
        s.push_str(&format!(
            "add table {fam} {NAT_TABLE}\nadd chain {fam} {NAT_TABLE} {NAT_CHAIN} {{ type nat hook postrouting priority srcnat; policy accept; }}\n"
        ));
        for a in mine {
            let subnet = format!("{}/{}", a.network(), a.prefix());
            let multicast = if fam == "ip" {
                "224.0.0.0/4"
            } else {
                "ff00::/8"
            };
            s.push_str(&format!(
                "add rule {fam} {NAT_TABLE} {NAT_CHAIN} {fam} saddr {} {fam} daddr != {{ {subnet}, {multicast} }} masquerade comment \"{comment}\"\n",
                a.ip()
            ));
        }
    }
    s
}

/// The script adding the MAC spoof check of one attachment: frames entering the bridge from
/// `host_veth` must carry `mac` as their source.
pub fn spoof_script(host_veth: &str, mac: &str, comment: &str) -> String {
    format!(
        "add table bridge {SPOOF_TABLE}\nadd chain bridge {SPOOF_TABLE} {SPOOF_CHAIN} {{ type filter hook prerouting priority -300; policy accept; }}\nadd rule bridge {SPOOF_TABLE} {SPOOF_CHAIN} iifname \"{host_veth}\" ether saddr != {mac} drop comment \"{comment}\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_fit_and_stay_parseable() {
        assert_eq!(
            comment("mynet", "abc", "eth0"),
            "cni-bridge net=mynet id=abc if=eth0"
        );
        let id = "a".repeat(64);
        let long_net = "n".repeat(60);
        let c = comment(&long_net, &id, "eth0");
        assert!(c.len() <= 127, "{c}");
        assert!(c.starts_with("cni-bridge net=#"), "{c}");
        assert!(c.ends_with(&format!("id={id} if=eth0")), "{c}");
        assert!(c.starts_with(&network_prefix(&long_net)), "{c}");
        let huge_id = "b".repeat(200);
        let c = comment("mynet", &huge_id, "eth0");
        assert!(c.len() <= 127 && c.contains("id=#"), "{c}");
        assert_eq!(network_prefix("mynet"), "cni-bridge net=mynet ");
        // a network whose name is a prefix of another's does not match it
        assert!(!comment("mynet2", "c", "eth0").starts_with(&network_prefix("mynet")));
    }

    /// Hashed names are FNV-1a 64, bit for bit: GC and DEL find the rules an older build
    /// tagged.
    #[test]
    fn hashed_comments_are_pinned() {
        let long_net = "a-network-name-longer-than-24-bytes";
        assert_eq!(
            comment(long_net, "ctr", "eth0"),
            "cni-bridge net=#6148e72f3ed9d066 id=ctr if=eth0"
        );
        assert_eq!(
            comment("mynet", &"c".repeat(100), "eth0"),
            "cni-bridge net=mynet id=#22d88743e6630359 if=eth0"
        );
    }

    #[test]
    fn scripts() {
        let s = masquerade_script(
            &[
                "10.88.0.2/16".parse().unwrap(),
                "fd00:88::2/64".parse().unwrap(),
            ],
            "cni-bridge net=n id=c if=eth0",
        );
        assert_eq!(
            s,
            concat!(
                "add table ip cni_bridge_nat\n",
                "add chain ip cni_bridge_nat postrouting { type nat hook postrouting priority srcnat; policy accept; }\n",
                "add rule ip cni_bridge_nat postrouting ip saddr 10.88.0.2 ip daddr != { 10.88.0.0/16, 224.0.0.0/4 } masquerade comment \"cni-bridge net=n id=c if=eth0\"\n",
                "add table ip6 cni_bridge_nat\n",
                "add chain ip6 cni_bridge_nat postrouting { type nat hook postrouting priority srcnat; policy accept; }\n",
                "add rule ip6 cni_bridge_nat postrouting ip6 saddr fd00:88::2 ip6 daddr != { fd00:88::/64, ff00::/8 } masquerade comment \"cni-bridge net=n id=c if=eth0\"\n",
            )
        );
        assert!(
            spoof_script("veth1", "0a:00:00:00:00:01", "x")
                .contains("iifname \"veth1\" ether saddr != 0a:00:00:00:00:01 drop comment \"x\"")
        );
    }
}
