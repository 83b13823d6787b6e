//! `tongban-testnet demo`: the four-region story, step by step, in plain words, each step
//! checking what it claims and showing the evidence (identifiers, codes, log indexes, digests).

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tongban_core::suite::Suite;

use crate::net::{self, BUSINESS_LICENCE, PERMIT, Testnet, wait_for};
use crate::signals;

/// The business licence at the heart of the story.
struct Licence {
    id: String,
    certificate: String,
}

struct Row {
    title: String,
    ok: bool,
    figure: String,
}

struct Story<'a> {
    net: &'a mut Testnet,
    licence: Option<Licence>,
    rows: Vec<Row>,
}

/// What a step shows: evidence lines, and the one figure for the summary.
struct Shown {
    lines: Vec<String>,
    figure: String,
}

impl Story<'_> {
    fn step(
        &mut self,
        title: &str,
        short: &str,
        explain: &str,
        run: impl FnOnce(&mut Story) -> Result<Shown>,
    ) {
        let n = self.rows.len() + 1;
        println!("\n── Step {n}. {title}");
        println!("   {explain}");
        let started = Instant::now();
        let (ok, figure) = match run(self) {
            Ok(shown) => {
                for line in &shown.lines {
                    println!("   · {line}");
                }
                println!("   ✓ done in {} ms", started.elapsed().as_millis());
                (true, shown.figure)
            }
            Err(e) => {
                println!("   ✗ FAILED: {e:#}");
                (false, format!("failed: {}", first_line(&format!("{e:#}"))))
            }
        };
        self.rows.push(Row {
            title: short.to_owned(),
            ok,
            figure,
        });
    }

    fn licence(&self) -> Result<&Licence> {
        self.licence
            .as_ref()
            .ok_or_else(|| anyhow!("skipped: the licence was not issued (step 2 failed)"))
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > 70 {
        format!("{}…", line.chars().take(70).collect::<String>())
    } else {
        line.to_owned()
    }
}

pub fn run(dir: Option<&Path>, suite: Suite) -> Result<ExitCode> {
    // The temporary directory, if any, lives as long as the run.
    let (dir, _temp) = signals::state_dir(dir, "tongban-demo-")?;
    println!(
        "Tongban demo: four regions (阜阳 Fuyang 341200, 济南 Jinan 370100, 宿迁 Suqian 321300, \
         铜陵 Tongling 340700) each run their own node on this machine; together they form one \
         federation. A business in Fuyang gets an electronic business licence, and the other \
         regions accept it without the paper original."
    );
    println!(
        "\n── Step 1. Four regions start and join one federation ({} suite)",
        suite.name()
    );
    println!(
        "   Each region's node gets its own keys, the federation root signs the membership (the \
         genesis), and every node connects to the others over libp2p."
    );
    let started = Instant::now();
    let mut net = Testnet::create(&dir, net::DEFAULT_REGIONS.len(), suite)?;
    for node in &net.state.nodes {
        println!(
            "   · {} {}: API {}, p2p {}",
            node.region,
            node.name,
            node.api,
            node.p2p.as_deref().unwrap_or("—")
        );
    }
    println!(
        "   · membership version 1 with {} members, checkpoints need {} cosignatures; state in {}",
        net.len(),
        net.state.quorum,
        net.dir.display()
    );
    let took = started.elapsed();
    println!("   ✓ done in {} ms", took.as_millis());
    let mut story = Story {
        net: &mut net,
        licence: None,
        rows: vec![Row {
            title: "four regions connect".into(),
            ok: true,
            figure: format!("full mesh in {:.1} s", took.as_secs_f64()),
        }],
    };
    story.step(
        "Fuyang's market regulator issues a business licence",
        "licence issued in Fuyang",
        "The agency signs the licence with its electronic seal; Fuyang's node records the \
         issuance in its transparency log.",
        issue_licence,
    );
    story.step(
        "Jinan verifies the licence offline, from its own replica of Fuyang's log",
        "verified offline in Jinan",
        "Fuyang's node is paused (SIGSTOP) so it cannot be asked; Jinan's node checks the seal, \
         the signature and the status from the copy of Fuyang's log it keeps.",
        verify_offline,
    );
    story.step(
        "The holder shows the licence as a QR code (亮证); Suqian's counter scans it",
        "QR shown, checked in Suqian",
        "Fuyang's node draws the licence, with only the holder's name and credit code disclosed, \
         as one QR code (TB1: text, specs/presentation.md); the counter in Suqian reads the code \
         and its own node verifies what it holds.",
        show_qr,
    );
    story.step(
        "The holder shows a presentation code (亮证码); Jinan's counter resolves it",
        "presentation code resolved in Jinan",
        "The holder's app (through Fuyang's government service agency) asks Fuyang's node for a \
         code that shows only the company's name, for five minutes and one use; Jinan's counter \
         types the code, Jinan's node asks Fuyang over the federation, and gets those fields as \
         a copy bound to Jinan's agency. Both logs record it; a second try is refused.",
        presentation_code,
    );
    story.step(
        "Jinan asks Fuyang for a verification proof (核验回执)",
        "verification proof for Jinan",
        "Jinan's approval bureau asks Fuyang's node, over the federation, whether the licence is \
         valid; Fuyang signs the answer, and both logs record it. The proof is then checked \
         offline with tongban-verify.",
        proof,
    );
    story.step(
        "Suqian receives a purpose-bound copy (加注件) for one case",
        "purpose-bound copy to Suqian",
        "Suqian's approval bureau asks for two fields of the licence for a named purpose and case; \
         Fuyang answers with a copy bound to that agency, purpose, case and expiry, and both \
         logs record the exchange.",
        share,
    );
    story.step(
        "Tongling issues a promise-based permit (告知承诺) that lapses at its deadline",
        "promise lapses in Tongling",
        "The applicant promises to hand in the missing documents within a few seconds and does \
         not; at the deadline Tongling's node revokes the permit by itself.",
        promise,
    );
    story.step(
        "Fuyang revokes the licence; Jinan sees it within a second",
        "revocation seen in Jinan",
        "The revocation is logged in Fuyang and gossiped; Jinan's verify is polled until it says \
         STATUS_REVOKED, and the time from Fuyang's acknowledgement is measured.",
        revoke,
    );
    story.step(
        "Suqian's node is killed, the others keep issuing, and it catches up after a restart",
        "Suqian killed and caught up",
        "SIGKILL gives the node no chance to finish anything. Fuyang and Jinan issue five \
         licences each meanwhile; after the restart Suqian fetches what it missed, with proofs.",
        crash_and_catch_up,
    );
    story.step(
        "An auditor replays all four logs",
        "audit replay of all logs",
        "tongban-verify's audit replay reads every node's log over HTTP, recomputes every tree \
         root, checks every checkpoint, entry and hash tile against the federation root, and \
         derives the statistics.",
        audit,
    );
    let rows = std::mem::take(&mut story.rows);
    drop(net);
    println!("\n── Summary");
    let width = rows
        .iter()
        .map(|r| r.title.chars().count())
        .max()
        .unwrap_or(0);
    for (i, row) in rows.iter().enumerate() {
        let pad = width - row.title.chars().count();
        println!(
            "{:>2}. {}{}  {}  {}",
            i + 1,
            row.title,
            " ".repeat(pad),
            if row.ok { "PASS" } else { "FAIL" },
            row.figure
        );
    }
    let failed = rows.iter().filter(|r| !r.ok).count();
    if failed == 0 {
        println!("all {} steps passed", rows.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} of {} steps FAILED", rows.len());
        Ok(ExitCode::FAILURE)
    }
}

fn code_of(answer: &Value) -> &str {
    answer["code"].as_str().unwrap_or_default()
}

fn issue_licence(story: &mut Story) -> Result<Shown> {
    let net = &*story.net;
    let f = net.index_of("341200")?;
    let agency = net.agency(f, "issuer")?;
    let holder = net::company_uscc("341200", 1)?;
    let issued = net
        .http
        .post(
            &net.url(f, "/v1/certificates"),
            Some(&agency.token),
            &json!({
                "seal": agency.seal, "type_code": BUSINESS_LICENCE, "serial": "2026000001",
                "type_name": "营业执照", "level": "A",
                "holder": {"name": "阜阳市通办示范科技有限公司", "id_type": "USCC", "id_number": holder},
                "licence": {"capital": 1_000_000, "scope": "软件开发"}
            }),
        )?
        .expect(201, "issuing the licence")?;
    let id = issued["id"].as_str().ok_or_else(|| anyhow!("no id"))?;
    let certificate = issued["certificate"]
        .as_str()
        .ok_or_else(|| anyhow!("no certificate"))?;
    let bytes = B64
        .decode(certificate)
        .context("the certificate's base64")?;
    let lines = vec![
        format!(
            "issuer: {} ({}), seal {}",
            agency.name, agency.uscc, agency.seal_id
        ),
        format!("holder: 阜阳市通办示范科技有限公司, USCC {holder}"),
        format!("licence identifier: {id}"),
        format!(
            "certificate: {} bytes (COSE_Sign1), digest {}",
            bytes.len(),
            issued["digest"].as_str().unwrap_or("?")
        ),
        format!(
            "Fuyang's log: issuance entry at index {}",
            issued["log_index"]
        ),
    ];
    story.licence = Some(Licence {
        id: id.to_owned(),
        certificate: certificate.to_owned(),
    });
    Ok(Shown {
        lines,
        figure: format!("log index {}", issued["log_index"]),
    })
}

fn verify_offline(story: &mut Story) -> Result<Shown> {
    let licence = story.licence()?;
    let net = &*story.net;
    let (f, j) = (net.index_of("341200")?, net.index_of("370100")?);
    let size = net.log_size(f)?;
    // Jinan holds Fuyang's log up to the licence before Fuyang goes silent.
    wait_for(Duration::from_secs(10), "Jinan's replica of Fuyang", || {
        Ok((net.replica_size(j, "341200")? >= size).then_some(()))
    })?;
    net.pause(f)?;
    let answer = net.http.post(
        &net.url(j, "/v1/verify"),
        None,
        &json!({"certificate": licence.certificate}),
    );
    // Fuyang runs again whatever the answer was.
    net.resume(f)?;
    let answer = answer?.expect(200, "verifying at Jinan")?;
    if answer["verdict"] != "valid" || code_of(&answer) != "OK" || answer["id"] != licence.id {
        bail!("Jinan answered {answer}");
    }
    let receipt = answer["receipt"].as_str().unwrap_or_default();
    Ok(Shown {
        lines: vec![
            format!(
                "Jinan's replica of Fuyang's log: {} entries",
                net.replica_size(j, "341200")?
            ),
            "Fuyang's node was stopped (SIGSTOP) while Jinan verified, and resumed after".into(),
            format!(
                "Jinan's answer: verdict {}, code {}, id {}",
                answer["verdict"].as_str().unwrap_or("?"),
                code_of(&answer),
                answer["id"].as_str().unwrap_or("?")
            ),
            format!(
                "Jinan's signed verification receipt: {} bytes (base64)",
                receipt.len()
            ),
        ],
        figure: "OK while Fuyang was silent".into(),
    })
}

fn show_qr(story: &mut Story) -> Result<Shown> {
    let licence = story.licence()?;
    let net = &*story.net;
    let (f, s) = (net.index_of("341200")?, net.index_of("321300")?);
    let agency = net.agency(f, "issuer")?;
    let path = format!(
        "/v1/certificates/{}/qr?disclose=holder.name,holder.id_number&format=text",
        licence.id
    );
    let answer = net.http.get(&net.url(f, &path), Some(&agency.token))?;
    if answer.status != 200 {
        bail!(
            "Fuyang's node answered {}: {}",
            answer.status,
            answer.text()
        );
    }
    let text = answer.text();
    // What the counter's scanner types, decoded as any reader does.
    let shown = tongban_core::qr::decode(&text).map_err(|f| anyhow!("the QR text: {f}"))?;
    let checked = net
        .http
        .post(
            &net.url(s, "/v1/verify"),
            None,
            &json!({"certificate": B64.encode(&shown)}),
        )?
        .expect(200, "verifying at Suqian")?;
    let disclosed = checked["disclosed"].clone();
    let mut names: Vec<&str> = disclosed
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    names.sort_unstable();
    if checked["verdict"] != "valid" || names != ["holder.id_number", "holder.name"] {
        bail!("Suqian answered {checked}");
    }
    let symbol = tongban_core::qr::symbol::Symbol::new(&text)?;
    Ok(Shown {
        lines: vec![
            format!(
                "the code: {} characters, QR version {} ({}x{} modules, level {})",
                text.len(),
                symbol.version(),
                symbol.width(),
                symbol.width(),
                symbol.level()
            ),
            format!("{}…", text.chars().take(48).collect::<String>()),
            format!(
                "Suqian's answer: verdict {}, code {}, disclosed {}",
                checked["verdict"].as_str().unwrap_or("?"),
                code_of(&checked),
                disclosed
            ),
        ],
        figure: format!("version {} code verified", symbol.version()),
    })
}

fn presentation_code(story: &mut Story) -> Result<Shown> {
    let licence = story.licence()?;
    let net = &*story.net;
    let (f, j) = (net.index_of("341200")?, net.index_of("370100")?);
    let app = net.agency(f, "approval")?;
    let made = net
        .http
        .post(
            &net.url(f, "/v1/presentations"),
            Some(&app.token),
            &json!({"id": licence.id, "fields": ["holder.name"]}),
        )?
        .expect(201, "making a code at Fuyang's node")?;
    let code = made["code"]
        .as_str()
        .ok_or_else(|| anyhow!("no code in {made}"))?;
    let counter = net.agency(j, "approval")?;
    let resolve = || {
        net.http.post(
            &net.url(j, "/v1/presentations/resolve"),
            Some(&counter.token),
            &json!({"code": code, "purpose": "企业开户核验", "case": "JN-2026-0456"}),
        )
    };
    let shown = resolve()?.expect(201, "resolving the code at Jinan's node")?;
    let fields: Vec<String> = shown["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| format!("{} = {}", f["name"].as_str().unwrap_or("?"), f["value"]))
                .collect()
        })
        .unwrap_or_default();
    if code_of(&shown) != "OK" || shown["id"] != json!(licence.id) || fields.len() != 1 {
        bail!("Jinan's node answered {shown}");
    }
    let again = resolve()?;
    let again_code = again
        .json()
        .map(|v| code_of(&v).to_owned())
        .unwrap_or_default();
    if again.status != 409 || again_code != "PRESENTATION_USED_UP" {
        bail!(
            "a second resolution answered {}: {}",
            again.status,
            again.text()
        );
    }
    Ok(Shown {
        lines: vec![
            format!(
                "code {code} (QR text {}), one use, expires in {} s",
                made["qr_text"].as_str().unwrap_or("?"),
                made["expires"]
                    .as_u64()
                    .unwrap_or(0)
                    .saturating_sub(net::now_secs()?)
            ),
            format!(
                "Jinan's {} sees: {} — verdict {}, code {}",
                counter.name,
                fields.join(", "),
                shown["verdict"].as_str().unwrap_or("?"),
                code_of(&shown)
            ),
            format!(
                "Fuyang's log records the answer at index {}, Jinan's the copy at index {}",
                shown["log_index"], shown["received_log_index"]
            ),
            format!("a second resolution: HTTP {} {again_code}", again.status),
        ],
        figure: format!("1 field shown, 2nd try {again_code}"),
    })
}

fn proof(story: &mut Story) -> Result<Shown> {
    let licence = story.licence()?;
    let net = &*story.net;
    let j = net.index_of("370100")?;
    let asker = net.agency(j, "approval")?;
    let answer = net
        .http
        .post(
            &net.url(j, "/v1/proofs"),
            Some(&asker.token),
            &json!({"certificate": licence.certificate}),
        )?
        .expect(201, "asking Jinan's node for a proof")?;
    if answer["region"] != "341200" || answer["verdict"] != "valid" || code_of(&answer) != "OK" {
        bail!("the proof says {answer}");
    }
    let proof = B64
        .decode(answer["proof"].as_str().unwrap_or_default())
        .context("the proof's base64")?;
    // Offline: the proof and Jinan's federation trust bundle, checked by tongban-verify.
    let bundle = net
        .http
        .get(&net.url(j, "/v1/federation/trust-bundle"), None)?;
    if bundle.status != 200 {
        bail!("Jinan's federation trust bundle: HTTP {}", bundle.status);
    }
    let proof_file = net.dir.join("licence.proof");
    let bundle_file = net.dir.join("federation.bundle");
    std::fs::write(&proof_file, &proof)?;
    std::fs::write(&bundle_file, &bundle.body)?;
    let exe = std::env::current_exe()?;
    let checked = Command::new(exe)
        .args(["verify", "proof", "verify"])
        .arg(&proof_file)
        .arg("--trust")
        .arg(&bundle_file)
        .args(["--requester", "370100"])
        .output()?;
    if !checked.status.success() {
        bail!(
            "tongban-verify proof verify refused it: {}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
    }
    let verdict = String::from_utf8_lossy(&checked.stdout);
    Ok(Shown {
        lines: vec![
            format!("asked by {} ({})", asker.name, asker.uscc),
            format!(
                "Fuyang's answer: verdict {}, code {}, state {}",
                answer["verdict"].as_str().unwrap_or("?"),
                code_of(&answer),
                answer["state"]
            ),
            format!(
                "proof: {} bytes, digest {}; recorded in Jinan's log at index {}",
                proof.len(),
                answer["digest"].as_str().unwrap_or("?"),
                answer["log_index"]
            ),
            format!(
                "offline check (tongban-verify proof verify): {}",
                verdict.lines().next().unwrap_or("exit 0")
            ),
        ],
        figure: format!("proof in Jinan's log at {}", answer["log_index"]),
    })
}

fn share(story: &mut Story) -> Result<Shown> {
    let licence = story.licence()?;
    let net = &*story.net;
    let s = net.index_of("321300")?;
    let asker = net.agency(s, "approval")?;
    let fields = ["holder.name", "licence.capital"];
    let given = net
        .http
        .post(
            &net.url(s, "/v1/shares"),
            Some(&asker.token),
            &json!({
                "seal": asker.seal, "region": "341200", "id": licence.id, "fields": fields,
                "purpose": "企业跨省迁移登记", "case": "SQ-2026-0001",
            }),
        )?
        .expect(201, "asking for a copy at Suqian's node")?;
    let copy = given["copy"]
        .as_str()
        .ok_or_else(|| anyhow!("no copy in {given}"))?;
    let checked = net
        .http
        .post(
            &net.url(s, "/v1/copies/verify"),
            Some(&asker.token),
            &json!({"copy": copy}),
        )?
        .expect(200, "verifying the copy as its recipient")?;
    if code_of(&checked) != "OK" {
        bail!("the copy did not verify for its recipient: {checked}");
    }
    let bytes = B64.decode(copy).context("the copy's base64")?;
    Ok(Shown {
        lines: vec![
            format!(
                "asked by {} ({}), seal {}",
                asker.name, asker.uscc, asker.seal_id
            ),
            format!(
                "fields {}; purpose 企业跨省迁移登记; case SQ-2026-0001",
                fields.join(", ")
            ),
            format!(
                "copy: {} bytes; Fuyang's log records the answer at index {}, Suqian's the \
                 receipt at index {}",
                bytes.len(),
                given["log_index"],
                given["received_log_index"]
            ),
            format!(
                "Suqian verifies the copy as its recipient: verdict {}, code {}",
                checked["verdict"].as_str().unwrap_or("?"),
                code_of(&checked)
            ),
        ],
        figure: format!(
            "Fuyang log {}, Suqian log {}",
            given["log_index"], given["received_log_index"]
        ),
    })
}

fn promise(story: &mut Story) -> Result<Shown> {
    let net = &*story.net;
    let t = net.index_of("340700")?;
    let agency = net.agency(t, "issuer")?;
    let deadline = net::now_secs()? + 3;
    let holder = net::company_uscc("340700", 1)?;
    let issued = net
        .http
        .post(
            &net.url(t, "/v1/certificates"),
            Some(&agency.token),
            &json!({
                "seal": agency.seal, "type_code": PERMIT, "serial": "2026000101",
                "type_name": "食品经营许可证", "level": "A", "promise_deadline": deadline,
                "holder": {"name": "铜陵市承诺示范餐饮有限公司", "id_type": "USCC", "id_number": holder},
                "licence": {"scope": "热食类食品制售"}
            }),
        )?
        .expect(201, "issuing the permit")?;
    let id = issued["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id"))?
        .to_owned();
    let certificate = issued["certificate"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let verify = || -> Result<Value> {
        net.http
            .post(
                &net.url(t, "/v1/verify"),
                None,
                &json!({"certificate": certificate}),
            )?
            .expect(200, "verifying the permit")
    };
    let before = verify()?;
    if code_of(&before) != "OK" {
        bail!("before its deadline the permit verifies as {before}");
    }
    let status = wait_for(Duration::from_secs(15), "the permit to lapse", || {
        let status = net
            .http
            .get(&net.url(t, &format!("/v1/certificates/{id}/status")), None)?
            .expect(200, "the permit's status")?;
        Ok((status["state_name"] == "revoked").then_some(status))
    })?;
    let lapsed_after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH + Duration::from_secs(deadline))
        .unwrap_or_default();
    if status["reason"] != "promise_lapsed" {
        bail!("revoked for another reason: {status}");
    }
    let after = verify()?;
    if after["verdict"] == "valid" {
        bail!("after the deadline the permit still verifies: {after}");
    }
    Ok(Shown {
        lines: vec![
            format!(
                "permit {id} (食品经营许可证), issued at log index {}",
                issued["log_index"]
            ),
            format!(
                "before the deadline: code {}; deadline {deadline} (Unix time)",
                code_of(&before)
            ),
            format!(
                "the node revoked it by itself: state {} ({}), reason {}, since {}",
                status["state"],
                status["state_name"].as_str().unwrap_or("?"),
                status["reason"].as_str().unwrap_or("?"),
                status["since"]
            ),
            format!(
                "after the deadline: verdict {}, code {}",
                after["verdict"].as_str().unwrap_or("?"),
                code_of(&after)
            ),
        ],
        figure: format!(
            "revoked by the node {} ms after its deadline",
            lapsed_after.as_millis()
        ),
    })
}

fn revoke(story: &mut Story) -> Result<Shown> {
    let licence = story.licence()?;
    let net = &*story.net;
    let (f, j) = (net.index_of("341200")?, net.index_of("370100")?);
    let agency = net.agency(f, "issuer")?;
    let revoked = net
        .http
        .post(
            &net.url(f, &format!("/v1/certificates/{}/status", licence.id)),
            Some(&agency.token),
            &json!({"operation": "revoke", "reason": "申请人申请撤销"}),
        )?
        .expect(200, "revoking at Fuyang")?;
    let acknowledged = Instant::now();
    let answer = wait_for(
        Duration::from_secs(10),
        "Jinan to see the revocation",
        || {
            let answer = net
                .http
                .post(
                    &net.url(j, "/v1/verify"),
                    None,
                    &json!({"certificate": licence.certificate}),
                )?
                .expect(200, "verifying at Jinan")?;
            Ok((code_of(&answer) == "STATUS_REVOKED").then_some(answer))
        },
    )?;
    let latency = acknowledged.elapsed();
    let lines = vec![
        format!(
            "Fuyang: state {} ({}) at log index {}",
            revoked["state"],
            revoked["state_name"].as_str().unwrap_or("?"),
            revoked["log_index"]
        ),
        format!(
            "Jinan: verdict {}, code {}, {} ms after Fuyang acknowledged",
            answer["verdict"].as_str().unwrap_or("?"),
            code_of(&answer),
            latency.as_millis()
        ),
    ];
    if latency >= Duration::from_secs(1) {
        bail!(
            "Jinan saw the revocation only after {} ms (the promise is within a second)",
            latency.as_millis()
        );
    }
    Ok(Shown {
        lines,
        figure: format!("seen in Jinan after {} ms", latency.as_millis()),
    })
}

fn crash_and_catch_up(story: &mut Story) -> Result<Shown> {
    let net = &mut *story.net;
    let (f, j, s) = (
        net.index_of("341200")?,
        net.index_of("370100")?,
        net.index_of("321300")?,
    );
    let before = net.log_size(s)?;
    net.kill9(s)?;
    let mut issued = Vec::new();
    for (i, region) in [(f, "341200"), (j, "370100")] {
        let agency = net.agency(i, "issuer")?.clone();
        let holder = net::company_uscc(region, 2)?;
        for serial in 2026000002..2026000007u64 {
            let answer = net
                .http
                .post(
                    &net.url(i, "/v1/certificates"),
                    Some(&agency.token),
                    &json!({
                        "seal": agency.seal, "type_code": BUSINESS_LICENCE,
                        "serial": serial.to_string(), "type_name": "营业执照", "level": "A",
                        "holder": {"name": "通办示范贸易有限公司", "id_type": "USCC", "id_number": holder},
                        "licence": {"capital": 500_000}
                    }),
                )?
                .expect(201, "issuing while Suqian is down")?;
            issued.push((
                region,
                answer["certificate"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ));
        }
    }
    let mut targets = Vec::new();
    for i in 0..net.len() {
        if i != s {
            targets.push((net.node(i).region.clone(), net.log_size(i)?));
        }
    }
    let restarted = Instant::now();
    net.start(s)?;
    let listening = restarted.elapsed();
    net.wait_replicas(s, &targets, Duration::from_secs(60))?;
    let caught_up = restarted.elapsed();
    let after = net.log_size(s)?;
    if after < before {
        bail!("Suqian's own log shrank from {before} to {after} entries");
    }
    for (region, certificate) in &issued {
        let answer = net
            .http
            .post(
                &net.url(s, "/v1/verify"),
                None,
                &json!({"certificate": certificate}),
            )?
            .expect(200, "verifying at Suqian")?;
        if code_of(&answer) != "OK" {
            bail!("a licence of {region} issued while Suqian was down: {answer}");
        }
    }
    Ok(Shown {
        lines: vec![
            format!("Suqian killed with {before} entries in its own log"),
            format!(
                "meanwhile: 5 licences issued in Fuyang, 5 in Jinan; the others' logs: {}",
                targets
                    .iter()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!(
                "restarted: listening after {} ms, every replica caught up after {} ms",
                listening.as_millis(),
                caught_up.as_millis()
            ),
            format!(
                "Suqian's own log: {after} entries (nothing lost); all {} new licences verify OK there",
                issued.len()
            ),
        ],
        figure: format!("caught up {} ms after restart", caught_up.as_millis()),
    })
}

fn audit(story: &mut Story) -> Result<Shown> {
    let net = &*story.net;
    let kid = tongban_node::keyfile::read(&net.state.federation_key)
        .context("reading the federation root key")?
        .public()
        .kid()
        .to_hex();
    let urls: Vec<String> = net.state.nodes.iter().map(|n| n.api.clone()).collect();
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args([
            "verify",
            "audit",
            "replay",
            "--json",
            "--federation-kid",
            &kid,
        ])
        .args(&urls)
        .output()?;
    let report: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "the audit replay printed no report: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let mut lines = vec![format!(
        "tongban-verify audit replay --json --federation-kid {kid} {}",
        urls.join(" ")
    )];
    let mut totals = [0u64; 4];
    for log in report["logs"].as_array().into_iter().flatten() {
        let s = &log["statistics"];
        lines.push(format!(
            "{} {}: {} entries, {} checkpoints verified (largest {}), {} hash tiles; issued {}, \
             status changes {}, verifications {} ({} for other regions), copies given {}, \
             copies received {}, proofs received {}, codes made {} and resolved {}",
            log["region"].as_str().unwrap_or("?"),
            if log["clean"] == true {
                "CLEAN"
            } else {
                "FINDINGS"
            },
            log["entries"],
            log["checkpoints_verified"],
            log["largest_checkpoint"],
            log["hash_tiles_verified"],
            s["issued"],
            s["status_changes_by_state"],
            s["verifications"],
            s["verifications_cross_region"],
            s["shares_given"],
            s["copies_received"],
            s["proofs_received"],
            s["presentations_made"],
            s["presentations_resolved"],
        ));
        for finding in log["findings"].as_array().into_iter().flatten() {
            lines.push(format!("  finding: {finding}"));
        }
        if log["checkpoints_verified"].as_u64().unwrap_or(0) == 0 {
            bail!("{}: no checkpoint was verified", log["source"]);
        }
        totals[0] += log["entries"].as_u64().unwrap_or(0);
        totals[1] += s["issued"].as_u64().unwrap_or(0);
        totals[2] += s["verifications"].as_u64().unwrap_or(0);
        totals[3] += log["checkpoints_verified"].as_u64().unwrap_or(0);
    }
    if report["logs"].as_array().map(Vec::len) != Some(net.len()) {
        bail!("the replay reported on the wrong number of logs: {report}");
    }
    if report["clean"] != true || !out.status.success() {
        for line in &lines {
            println!("   · {line}");
        }
        bail!("the replay found problems (exit {})", out.status);
    }
    // Consistent across the federation: every node's replica of every other region's log
    // reaches the size the auditor replayed from that region's own node.
    let mut replicas = 0;
    for log in report["logs"].as_array().into_iter().flatten() {
        let region = log["region"].as_str().unwrap_or_default();
        let size = log["entries"].as_u64().unwrap_or(0);
        for i in 0..net.len() {
            if net.node(i).region != region {
                net.wait_replicas(i, &[(region.to_owned(), size)], Duration::from_secs(10))?;
                replicas += 1;
            }
        }
    }
    lines.push(format!(
        "all {replicas} replicas (every node's copy of every other region's log) hold the \
         replayed logs"
    ));
    Ok(Shown {
        lines,
        figure: format!(
            "4 logs clean: {} entries, {} checkpoints, {} issued, {} verifications",
            totals[0], totals[3], totals[1], totals[2]
        ),
    })
}
