//! The container image, built and run as a user would run it: `podman` builds
//! deploy/docker/Dockerfile's runtime stage on a base made with `debootstrap` (the public
//! distroless base cannot be pulled here; the stand-in has what it has: glibc, CA certificates,
//! the nonroot user 65532) with this build's binary (`--build-arg BINARY=host`). This machine
//! cannot start containers (setrlimit is refused), so the test creates a container without
//! starting it, mounts its file system and runs the entrypoint in it as the image's user with
//! `chroot --userspec`: `--version`; `run` on kinesalite with its config from the environment,
//! its state written under the declared volume, the Sigma rules at /etc/trailwatch/sigma/
//! loaded and raising; `health` against it.
//!
//! `scripts/test` installs podman and debootstrap (Debian's packages, as root) and makes the
//! base once (`TRAILWATCH_IMAGE_BASE` names it). Where it cannot, it sets
//! `TRAILWATCH_SKIP_IMAGE=1` and says so, loudly; nothing else skips this test.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::emu::*;
use crate::common::*;
use serde_json::Value;

/// The image's user, as the Dockerfile says (`USER 65532:65532`).
const USER: &str = "65532:65532";

fn podman(args: &[&str]) -> Output {
    let out = Command::new("podman").args(args).output().expect("podman");
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A container created from the image (never started) and its file system, mounted; removed
/// with the image when dropped.
struct Mounted {
    name: String,
    image: String,
    root: PathBuf,
    stages: Vec<String>,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        for args in [
            vec!["umount", self.name.as_str()],
            vec!["rm", "-f", self.name.as_str()],
            vec!["rmi", "-f", self.image.as_str()],
        ] {
            let _ = Command::new("podman").args(&args).output();
        }
        for id in &self.stages {
            let _ = Command::new("podman").args(["rmi", id]).output();
        }
    }
}

/// The entrypoint, run inside the mounted image as its user, with `env`.
fn in_image(root: &Path, args: &[&str], env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new("chroot");
    cmd.arg(format!("--userspec={USER}"))
        .arg(root)
        .arg("/usr/local/bin/trailwatch")
        .args(args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .envs(env.iter().map(|(k, v)| (k, v.as_str())));
    cmd
}

#[test]
fn the_image_runs_as_its_user_keeps_its_state_in_its_volume_and_loads_the_sigma_rules() {
    if std::env::var("TRAILWATCH_SKIP_IMAGE").is_ok_and(|v| v == "1") {
        eprintln!("TRAILWATCH_SKIP_IMAGE=1: the image is NOT built or checked (see scripts/test's output)");
        return;
    }
    let base = std::env::var("TRAILWATCH_IMAGE_BASE").expect(
        "TRAILWATCH_IMAGE_BASE (a base image made with debootstrap) is not set: run scripts/test",
    );
    let repo = env!("CARGO_MANIFEST_DIR");
    let binary = Path::new(env!("CARGO_BIN_EXE_trailwatch"));
    let tag = format!("localhost/trailwatch-test:{}", std::process::id());
    let name = format!("trailwatch-test-{}", std::process::id());
    let dockerfile = format!("{repo}/deploy/docker/Dockerfile");
    let context = format!("binary={}", binary.parent().unwrap().display());
    let build = [
        "build",
        "--format",
        "docker",
        "-f",
        &dockerfile,
        "--build-arg",
        &format!("BASE={base}"),
        "--build-arg",
        "BINARY=host",
        "--build-context",
        &context,
        "-t",
        &tag,
        repo,
    ];
    let built = podman(&build);
    // Removed at the end, whatever happens (with its container once there is one).
    let mut m = Mounted {
        name: name.clone(),
        image: tag.clone(),
        root: PathBuf::new(),
        // The stages' images (`--> ID`), the host stage's among them.
        stages: text(&built)
            .lines()
            .filter_map(|l| l.strip_prefix("--> "))
            .map(|id| id.trim_start_matches("Using cache ").to_string())
            .collect(),
    };
    let inspect: Value = serde_json::from_str(&text(&podman(&["image", "inspect", &tag]))).unwrap();
    let image = &inspect[0];
    let config = &image["Config"];
    assert_eq!(config["User"], USER);
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/trailwatch"])
    );
    assert!(
        config["Volumes"]["/var/lib/trailwatch"].is_object(),
        "{config}"
    );
    assert_eq!(
        image["Healthcheck"]["Test"],
        serde_json::json!([
            "CMD",
            "/usr/local/bin/trailwatch",
            "health",
            "127.0.0.1:9090"
        ])
    );
    podman(&["create", "--name", &name, &tag]);
    m.root = PathBuf::from(text(&podman(&["mount", &name])));

    // The binary runs on the base's libraries, as the image's user.
    let v = in_image(&m.root, &["--version"], &[]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    assert!(text(&v).contains(env!("CARGO_PKG_VERSION")), "{}", text(&v));

    // The volume's folder is the user's: a volume mounted there starts as the image has it.
    let state = m.root.join("var/lib/trailwatch");
    let meta = std::fs::metadata(&state).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65532, 65532));
    assert!(m.root.join("etc/trailwatch/sigma").is_dir());

    // `run`, as part 3 starts it: its config from the environment, the rules the image ships.
    let k = start_kinesalite();
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "image", 1));
    rt.block_on(put(&c, "image", &stratus(), 0));
    let metrics = free_port();
    let cfg = "sigma_rules = [\"/etc/trailwatch/sigma/\"]\n\n[policy]\napproved_regions = [\"us-east-1\"]\n\n[source.kinesis]\nstream = \"image\"\nstart = \"trim_horizon\"\npoll_interval = \"100ms\"\n\n[checkpoint]\npath = \"/var/lib/trailwatch/checkpoints.json\"\ninterval = \"200ms\"\n";
    let env = [
        ("TRAILWATCH_CONFIG", cfg.to_string()),
        (
            "AWS_ENDPOINT_URL_KINESIS",
            format!("http://127.0.0.1:{}", k.port),
        ),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("TRAILWATCH_LOG", "warn".into()),
    ];
    let addr = format!("127.0.0.1:{metrics}");
    let args = [
        "run",
        "--config",
        "env:TRAILWATCH_CONFIG",
        "--metrics-addr",
        &addr,
    ];
    let mut run = in_image(&m.root, &args, &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = run.stdout.take().unwrap();
    let lines = stdout_lines(stdout);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sigma = None;
    while sigma.is_none() && Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) else {
            assert!(run.try_wait().unwrap().is_none(), "run stopped");
            continue;
        };
        let a: Value = serde_json::from_str(&line).unwrap();
        if a["rule"] == "sigma:aws_cloudtrail_disable_logging" {
            sigma = Some(a);
        }
    }
    // Healthy by the health check's own command, run in the image against the running process.
    let deadline = Instant::now() + Duration::from_secs(30);
    let healthy = loop {
        let h = in_image(&m.root, &["health", &addr], &[]).output().unwrap();
        if h.status.success() || Instant::now() > deadline {
            break h.status.success();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // The checkpoint is in the volume, written by the image's user, once the records are done.
    let checkpoint = state.join("checkpoints.json");
    let saved = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !saved(&checkpoint).contains("shardId-") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = run.kill();
    let stop = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&stop.stderr);
    assert!(
        sigma.is_some(),
        "no alert from the image's Sigma rules: {stderr}"
    );
    assert!(healthy, "`trailwatch health {addr}` never answered healthy");
    let dead = in_image(&m.root, &["health", &addr], &[]).output().unwrap();
    assert!(
        !dead.status.success(),
        "health says healthy with nothing running"
    );

    let meta = std::fs::metadata(&checkpoint)
        .unwrap_or_else(|e| panic!("no checkpoint at {}: {e}; {stderr}", checkpoint.display()));
    assert_eq!(meta.uid(), 65532);
    let saved: Value = serde_json::from_str(&saved(&checkpoint)).unwrap();
    assert!(saved["shards"].to_string().contains("shardId-"), "{saved}");
}
