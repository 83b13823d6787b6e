//! The node's directory: where each file lives, `tongban-node init`, and reading it all back.

use std::path::{Path, PathBuf};

use tongban_core::ids::RegionCode;
use tongban_core::keys::{PublicKey, SecretKey};
use tongban_core::suite::Suite;
use tongban_core::trust::RegionRoot;
use tongban_core::values::{ShortText, Time};

use crate::config::{
    Config, FederationConfig, HttpConfig, LogSection, PromisesConfig, ReceiptsConfig,
};
use crate::credentials::Credentials;
use crate::keyfile::{self, KeyFileError};

/// How long a region root certificate made by `init` is valid.
const ROOT_VALIDITY: u64 = 10 * 365 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error(transparent)]
    Key(#[from] KeyFileError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error("{0} already holds a node; refusing to overwrite it")]
    Exists(PathBuf),
}

/// The files of a node directory.
#[derive(Clone, Debug)]
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    pub fn new(dir: &Path) -> Home {
        Home {
            dir: dir.to_owned(),
        }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }
    pub fn keys(&self) -> PathBuf {
        self.dir.join("keys")
    }
    pub fn region_root_key(&self) -> PathBuf {
        self.keys().join("region-root.key")
    }
    pub fn log_key(&self) -> PathBuf {
        self.keys().join("log.key")
    }
    pub fn node_key(&self) -> PathBuf {
        self.keys().join("node.key")
    }
    pub fn witness_key(&self) -> PathBuf {
        self.keys().join("witness.key")
    }
    pub fn federation_store(&self) -> PathBuf {
        self.dir.join("federation.redb")
    }
    pub fn replicas(&self) -> PathBuf {
        self.dir.join("replicas")
    }
    pub fn seal_keys(&self) -> PathBuf {
        self.keys().join("seals")
    }
    pub fn federation_key(&self) -> PathBuf {
        self.keys().join("federation-root.key")
    }
    pub fn region_cert(&self) -> PathBuf {
        self.dir.join("region.cert")
    }
    pub fn credentials(&self) -> PathBuf {
        self.dir.join("credentials.json")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("log.redb")
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HomeError + '_ {
    move |source| HomeError::Io {
        path: path.to_owned(),
        source,
    }
}

fn invalid(path: &Path, detail: impl Into<String>) -> HomeError {
    HomeError::Invalid {
        path: path.to_owned(),
        detail: detail.into(),
    }
}

/// What `init` is told.
pub struct InitOptions<'a> {
    pub region: &'a str,
    pub name: &'a str,
    pub federation_name: &'a str,
    /// The federation root's key, to certify the new region root. Without it `init` makes a
    /// federation of this one region, with its own federation root key in `keys/`.
    pub federation_key: Option<&'a Path>,
    /// The federation's signature suite: every key `init` makes but the node's libp2p identity
    /// (always Ed25519: specs/federation.md §3.1) is of it, and a given federation key must be.
    pub suite: Suite,
    pub http: HttpConfig,
    pub now: Time,
}

/// What `init` made that the operator must see once.
pub struct Initialised {
    pub operator_token: String,
    pub region_root: PublicKey,
}

/// Creates a node directory: keys (0600), the region root certificate, the configuration and the
/// operator's token (stored hashed).
pub fn init(home: &Home, options: &InitOptions<'_>) -> Result<Initialised, HomeError> {
    let region = RegionCode::parse(options.region)
        .map_err(|e| invalid(Path::new("--region"), e.to_string()))?;
    let name = ShortText::new(options.name)
        .ok_or_else(|| invalid(Path::new("--name"), "not a short text"))?;
    if home.config().exists() {
        return Err(HomeError::Exists(home.dir.clone()));
    }
    std::fs::create_dir_all(home.seal_keys()).map_err(io(&home.dir))?;
    {
        use std::os::unix::fs::PermissionsExt;
        for dir in [home.keys(), home.seal_keys()] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io(&dir))?;
        }
    }
    let suite = options.suite;
    let federation = match options.federation_key {
        Some(path) => keyfile::read(path)?,
        None => {
            let key = keyfile::generate(suite)?;
            keyfile::write(&home.federation_key(), &key)?;
            key
        }
    };
    if federation.suite() != suite {
        return Err(invalid(
            options
                .federation_key
                .unwrap_or(Path::new("--federation-key")),
            format!(
                "a federation key of the {} suite for a {suite} region",
                federation.suite()
            ),
        ));
    }
    let root = keyfile::generate(suite)?;
    keyfile::write(&home.region_root_key(), &root)?;
    keyfile::write(&home.log_key(), &keyfile::generate(suite)?)?;
    keyfile::write(&home.node_key(), &keyfile::generate(Suite::Ed25519)?)?;
    keyfile::write(&home.witness_key(), &keyfile::generate(suite)?)?;
    let until = Time::new(options.now.seconds() + ROOT_VALIDITY)
        .ok_or_else(|| invalid(&home.region_cert(), "validity beyond the time range"))?;
    let certificate = RegionRoot {
        region,
        name,
        key: root.public().clone(),
        valid_from: options.now,
        valid_until: until,
    }
    .certify(&federation)
    .map_err(|e| invalid(&home.region_cert(), e.to_string()))?;
    write_durably(&home.region_cert(), &certificate)?;
    let (credentials, operator_token) = Credentials::create(&home.credentials())
        .map_err(|e| invalid(&home.credentials(), e.to_string()))?;
    drop(credentials);
    let config = Config {
        region: options.region.to_owned(),
        name: options.name.to_owned(),
        federation: FederationConfig {
            name: options.federation_name.to_owned(),
            root_key: hex::encode(federation.public().as_bytes()),
        },
        http: options.http.clone(),
        log: LogSection::default(),
        receipts: ReceiptsConfig::default(),
        promises: PromisesConfig::default(),
        storage: crate::config::StorageConfig::default(),
        p2p: None,
    };
    let text =
        toml::to_string_pretty(&config).map_err(|e| invalid(&home.config(), e.to_string()))?;
    // The config is written last: its presence marks a complete directory.
    write_durably(&home.config(), text.as_bytes())?;
    Ok(Initialised {
        operator_token,
        region_root: root.public().clone(),
    })
}

/// Writes a whole file through a temporary name, so a crash leaves the old file or the new one.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), HomeError> {
    Ok(keyfile::write_file(path, bytes, keyfile::Replace::Yes)?)
}

/// The keys and documents a running node needs, read and checked.
pub struct Loaded {
    pub config: Config,
    pub region: RegionCode,
    pub federation_name: ShortText,
    pub federation_key: PublicKey,
    pub region_root: SecretKey,
    pub region_cert: Vec<u8>,
    pub log_key: SecretKey,
    pub node_key: SecretKey,
}

pub fn load(home: &Home) -> Result<Loaded, HomeError> {
    let path = home.config();
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let config: Config = toml::from_str(&text).map_err(|e| invalid(&path, e.to_string()))?;
    let region = RegionCode::parse(&config.region).map_err(|e| invalid(&path, e.to_string()))?;
    let federation_name = ShortText::new(&config.federation.name)
        .ok_or_else(|| invalid(&path, "federation.name is not a short text"))?;
    let federation_key = hex::decode(&config.federation.root_key)
        .ok()
        .and_then(|b| PublicKey::from_bytes(&b).ok())
        .ok_or_else(|| {
            invalid(
                &path,
                "federation.root_key is not a valid Ed25519 or SM2 key in hex",
            )
        })?;
    let region_cert = std::fs::read(home.region_cert()).map_err(io(&home.region_cert()))?;
    let region_root = keyfile::read(&home.region_root_key())?;
    let log_key = keyfile::read(&home.log_key())?;
    let node_key = keyfile::read(&home.node_key())?;
    // One suite for everything the region signs; the libp2p identity is Ed25519 in any suite.
    let suite = federation_key.suite();
    for (file, key_suite) in [
        (home.region_root_key(), region_root.suite()),
        (home.log_key(), log_key.suite()),
    ] {
        if key_suite != suite {
            return Err(invalid(
                &file,
                format!("a key of the {key_suite} suite in a {suite} federation"),
            ));
        }
    }
    if node_key.suite() != Suite::Ed25519 {
        return Err(invalid(
            &home.node_key(),
            "the node's libp2p identity must be an Ed25519 key",
        ));
    }
    Ok(Loaded {
        region,
        federation_name,
        federation_key,
        region_root,
        region_cert,
        log_key,
        node_key,
        config,
    })
}
