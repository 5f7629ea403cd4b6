//! The command line, as clap types.
//!
//! Flag names and defaults follow `flux bootstrap git` v2.9.4 wherever flux has the flag, so
//! that a user can move a command line between the two tools. Kubeconfig flags are accepted
//! after the plugin name (kubectl refuses them before it).
#![expect(
    clippy::doc_markdown,
    reason = "doc comments here are clap help text, read in a terminal where backticks show"
)]

use fluxbootstrap_auth::SecretString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse_duration;

/// Bootstrap Flux onto Kubernetes clusters from an Azure DevOps Git repository.
#[derive(Debug, Parser)]
#[command(name = "kubectl-fluxbootstrap", version, about, long_about = None)]
#[command(disable_help_subcommand = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,

    #[command(flatten)]
    pub(crate) global: GlobalArgs,
}

/// Flags every subcommand understands.
#[derive(Debug, Args, Clone)]
pub(crate) struct GlobalArgs {
    /// Path to the kubeconfig file (default: `$KUBECONFIG`, then `~/.kube/config`)
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: the current context); `azdo` takes it repeatedly
    /// to bootstrap several clusters in one run
    #[arg(long, global = true, value_name = "NAME", action = clap::ArgAction::Append)]
    pub(crate) context: Vec<String>,

    /// Kubeconfig cluster to use instead of the context's
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) cluster: Option<String>,

    /// Kubeconfig user to use instead of the context's
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) user: Option<String>,

    /// Timeout of a single request to the Kubernetes API server, e.g. `30s` (0: none)
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) request_timeout: Option<Duration>,

    /// Namespace Flux is installed in (also the name of its GitRepository and Kustomization)
    #[arg(
        short = 'n',
        long,
        global = true,
        env = "FLUX_SYSTEM_NAMESPACE",
        default_value = "flux-system"
    )]
    pub(crate) namespace: String,

    /// Use the namespace of the kubeconfig context instead of `flux-system` when `-n` is not
    /// given (also `FLUX_NS_FOLLOWS_KUBE_CONTEXT`)
    #[arg(long, global = true)]
    pub(crate) ns_follows_kube_context: bool,

    /// Timeout of the whole operation
    #[arg(long, global = true, default_value = "5m", value_parser = parse_duration)]
    pub(crate) timeout: Duration,

    /// Output format: `text` (steps on stderr) or `json` (a summary on stdout)
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub(crate) output: OutputFormat,

    /// When to colour the output
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,

    /// Print only errors and warnings
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,

    /// Print more detail (objects, diffs, timings)
    #[arg(short = 'v', long, global = true)]
    pub(crate) verbose: bool,

    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
}

/// kubectl's connection flags: each overrides the kubeconfig context's cluster or user.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Kubernetes connection")]
pub(crate) struct ConnectionArgs {
    /// API server URL (also without a kubeconfig)
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) server: Option<String>,

    /// Bearer token for the API server
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        hide_env_values = true,
        value_parser = secret
    )]
    pub(crate) token: Option<SecretString>,

    /// CA file for the API server's certificate
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) certificate_authority: Option<PathBuf>,

    /// Do not verify the API server's certificate (insecure)
    #[arg(long, global = true)]
    pub(crate) insecure_skip_tls_verify: bool,

    /// Server name to verify the API server's certificate against
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) tls_server_name: Option<String>,

    /// Client certificate file for TLS authentication
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) client_certificate: Option<PathBuf>,

    /// Client key file for TLS authentication
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) client_key: Option<PathBuf>,

    /// User to impersonate
    #[arg(long = "as", global = true, value_name = "USER")]
    pub(crate) as_user: Option<String>,

    /// UID to impersonate
    #[arg(long, global = true, value_name = "UID")]
    pub(crate) as_uid: Option<String>,

    /// Group to impersonate (repeatable)
    #[arg(long, global = true, value_name = "GROUP", action = clap::ArgAction::Append)]
    pub(crate) as_group: Vec<String>,

    /// Extra user information to impersonate, `KEY=VALUE` (repeatable)
    #[arg(
        long,
        global = true,
        value_name = "KEY=VALUE",
        action = clap::ArgAction::Append,
        value_parser = parse_key_value
    )]
    pub(crate) as_user_extra: Vec<(String, String)>,

    /// Do not ask the API server for compressed responses
    #[arg(long, global = true)]
    pub(crate) disable_compression: bool,
}

fn parse_key_value(value: &str) -> Result<(String, String), String> {
    value
        .split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected `KEY=VALUE`, not `{value}`"))
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Flux-style step lines on stderr
    Text,
    /// A machine-readable summary on stdout
    Json,
}

/// `--cluster-pat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ClusterPat {
    /// Store the push PAT in the cluster (what flux does)
    Push,
    /// Mint a read-only PAT for the cluster and store only that
    Mint,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    /// Colour when stderr is a terminal and `NO_COLOR` is unset
    Auto,
    /// Always colour
    Always,
    /// Never colour
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Bootstrap Flux from an Azure DevOps Git repository (like `flux bootstrap git`)
    Azdo(Box<AzdoArgs>),
    /// Check prerequisites (`--pre`) or the health of an installed Flux
    Check(CheckArgs),
    /// Replace the PAT in the cluster's auth Secret in place, after validating it
    Rotate(Box<RotateArgs>),
    /// Remove Flux from the cluster, like `flux uninstall`
    Uninstall(UninstallArgs),
    /// Print the files bootstrap would write, without touching git or a cluster
    Export(Box<ExportArgs>),
    /// Print the plugin version, the default Flux version and the Flux version on the cluster
    Version(VersionArgs),
    /// Print a shell completion script
    Completion(CompletionArgs),
}

/// Options that shape the generated manifests (shared by `azdo` and `export`).
#[derive(Debug, Args, Clone)]
pub(crate) struct RenderArgs {
    /// Flux version to install (`latest` asks GitHub)
    #[arg(long = "version", default_value = "v2.9.4", value_name = "VERSION")]
    pub(crate) flux_version: String,

    /// Flux components to install
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "source-controller,kustomize-controller,helm-controller,notification-controller"
    )]
    pub(crate) components: Vec<String>,

    /// Extra components: image-reflector-controller, image-automation-controller, source-watcher
    #[arg(long, value_delimiter = ',')]
    pub(crate) components_extra: Vec<String>,

    /// Container registry prefix of the controller images
    #[arg(long, default_value = "ghcr.io/fluxcd")]
    pub(crate) registry: String,

    /// Name of a dockerconfigjson Secret every controller pulls with
    #[arg(long, value_name = "NAME")]
    pub(crate) image_pull_secret: Option<String>,

    /// Install Flux's network policies
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub(crate) network_policy: bool,

    /// Let the controllers watch every namespace
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub(crate) watch_all_namespaces: bool,

    /// Controller log level
    #[arg(long, default_value = "info", value_parser = ["debug", "info", "error"])]
    pub(crate) log_level: String,

    /// Cluster DNS domain
    #[arg(long, default_value = "cluster.local")]
    pub(crate) cluster_domain: String,

    /// Taint keys the controllers tolerate
    #[arg(long, value_delimiter = ',')]
    pub(crate) toleration_keys: Vec<String>,

    /// Use this local bundle (a directory with the bundle files or a `manifests.tar.gz`)
    /// instead of downloading the release
    #[arg(long, value_name = "PATH")]
    pub(crate) manifests: Option<PathBuf>,

    /// Base URL of the Flux release downloads (for mirrors)
    #[arg(
        long,
        env = "FLUXBOOTSTRAP_RELEASES_URL",
        default_value = "https://github.com",
        hide_default_value = true
    )]
    pub(crate) releases_url: String,

    /// Path in the repository the cluster syncs, e.g. `clusters/prod`
    #[arg(long, default_value = "")]
    pub(crate) path: String,

    /// Branch to commit to and sync from
    #[arg(long, default_value = "main")]
    pub(crate) branch: String,

    /// Reconciliation interval of the GitRepository
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub(crate) interval: Duration,

    /// Name of the Secret holding the Git credentials
    #[arg(long, default_value = "flux-system")]
    pub(crate) secret_name: String,

    /// Let the GitRepository clone submodules
    #[arg(long)]
    pub(crate) recurse_submodules: bool,

    /// Directories of the repository the GitRepository checks out (sparse checkout); the
    /// `--path` must be one of them
    #[arg(long, value_delimiter = ',', value_name = "DIRS")]
    pub(crate) sparse_checkout: Vec<String>,

    /// Host key algorithms the controllers offer over SSH
    #[arg(long, value_delimiter = ',', value_name = "ALGOS")]
    pub(crate) ssh_hostkey_algos: Vec<String>,

    /// `known_hosts` file holding the SSH host's key: replaces the pinned `ssh.dev.azure.com`
    /// key (for when Microsoft rotates it) and the trust-on-first-use scan of other hosts
    #[arg(long, value_name = "FILE")]
    pub(crate) known_hosts_file: Option<PathBuf>,

    /// Authenticate the cluster with Azure workload identity instead of a stored PAT
    #[arg(long, value_parser = ["azure"])]
    pub(crate) provider: Option<String>,

    /// Client ID of the managed identity (with `--provider azure`)
    #[arg(long, value_name = "ID")]
    pub(crate) azure_client_id: Option<String>,

    /// Tenant ID of the managed identity (with `--provider azure`)
    #[arg(long, value_name = "ID")]
    pub(crate) azure_tenant_id: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RepoArgs {
    /// Azure DevOps repository URL (HTTPS, SSH or scp-like; every Azure DevOps form)
    #[arg(long, required_unless_present = "repository")]
    pub(crate) url: Option<String>,

    /// Organization (with `--project` and `--repository`, instead of `--url`)
    #[arg(long, requires_all = ["project", "repository"])]
    pub(crate) org: Option<String>,

    /// Project (with `--org` and `--repository`)
    #[arg(long)]
    pub(crate) project: Option<String>,

    /// Repository (with `--org` and `--project`)
    #[arg(long, conflicts_with = "url", requires = "org")]
    pub(crate) repository: Option<String>,

    /// User name for HTTPS basic auth (Azure DevOps ignores it for PATs)
    #[arg(short = 'u', long, default_value = "git")]
    pub(crate) username: String,

    /// PAT (HTTPS) or private key passphrase (SSH); prefer `GIT_PASSWORD` or a pipe
    #[arg(short = 'p', long, hide_env_values = true, value_parser = secret)]
    pub(crate) password: Option<SecretString>,

    /// CA bundle for the HTTPS client (Azure DevOps Server); stored in the Secret as `ca.crt`
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_file: Option<PathBuf>,

    /// Allow plain `http://` URLs (Azure DevOps Server only)
    #[arg(long)]
    pub(crate) allow_insecure_http: bool,
}

#[derive(Debug, Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "clap flags: each bool is one independent switch of the command line"
)]
pub(crate) struct AzdoArgs {
    #[command(flatten)]
    pub(crate) repo: RepoArgs,

    #[command(flatten)]
    pub(crate) render: RenderArgs,

    /// Store the PAT in the cluster and sync over HTTPS (the default for HTTPS URLs)
    #[arg(long)]
    pub(crate) token_auth: bool,

    /// Send the password as a bearer token (Entra ID tokens); implies `--token-auth`
    #[arg(long)]
    pub(crate) with_bearer_token: bool,

    /// SSH host for the cluster, e.g. `ssh.dev.azure.com`: push with the PAT, sync over SSH
    #[arg(long, value_name = "HOST[:PORT]")]
    pub(crate) ssh_hostname: Option<String>,

    /// Algorithm of a generated SSH key (Azure DevOps accepts only RSA)
    #[arg(long, default_value = "rsa", value_parser = ["rsa", "ecdsa", "ed25519"])]
    pub(crate) ssh_key_algorithm: String,

    /// Size of a generated RSA key
    #[arg(long, default_value_t = 4096)]
    pub(crate) ssh_rsa_bits: u32,

    /// Curve of a generated ECDSA key
    #[arg(long, default_value = "p384", value_parser = ["p256", "p384", "p521"])]
    pub(crate) ssh_ecdsa_curve: String,

    /// Existing SSH private key for the push and the cluster
    #[arg(long, value_name = "FILE")]
    pub(crate) private_key_file: Option<PathBuf>,

    /// Do not ask to confirm that the public key was added to Azure DevOps
    #[arg(short = 's', long)]
    pub(crate) silent: bool,

    /// GPG key ring (an exported secret key, armored or binary) that signs the commits, with
    /// the user's `GnuPG`
    #[arg(long, value_name = "FILE")]
    pub(crate) gpg_key_ring: Option<PathBuf>,

    /// Id of the signing key in `--gpg-key-ring` (default: its first signing key)
    #[arg(long, value_name = "KEYID", requires = "gpg_key_ring")]
    pub(crate) gpg_key_id: Option<String>,

    /// Passphrase of the `--gpg-key-ring` key (prefer `FLUXBOOTSTRAP_GPG_PASSPHRASE`)
    #[arg(
        long,
        env = "FLUXBOOTSTRAP_GPG_PASSPHRASE",
        hide_env_values = true,
        value_name = "PASSPHRASE",
        value_parser = secret
    )]
    pub(crate) gpg_passphrase: Option<SecretString>,

    /// SSH private key that signs the commits (`git log --show-signature` with
    /// `gpg.format=ssh`)
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "ssh_signing_reuse_private_key"
    )]
    pub(crate) ssh_signing_key_file: Option<PathBuf>,

    /// Passphrase of `--ssh-signing-key-file` (prefer `FLUXBOOTSTRAP_SSH_SIGNING_PASSWORD`)
    #[arg(
        long,
        alias = "ssh-signing-passphrase",
        env = "FLUXBOOTSTRAP_SSH_SIGNING_PASSWORD",
        hide_env_values = true,
        value_name = "PASSPHRASE",
        value_parser = secret
    )]
    pub(crate) ssh_signing_password: Option<SecretString>,

    /// Sign the commits with the SSH transport key (`--private-key-file`)
    #[arg(long, requires = "private_key_file")]
    pub(crate) ssh_signing_reuse_private_key: bool,

    /// Registry credentials `USER:PASSWORD` for the `--image-pull-secret` Secret, which bootstrap
    /// then creates like flux (prefer `FLUXBOOTSTRAP_REGISTRY_CREDS` to the flag)
    #[arg(
        long,
        env = "FLUXBOOTSTRAP_REGISTRY_CREDS",
        hide_env_values = true,
        value_name = "USER:PASSWORD",
        value_parser = parse_registry_creds
    )]
    pub(crate) registry_creds: Option<RegistryCreds>,

    /// Commit author name
    #[arg(long, default_value = "Flux")]
    pub(crate) author_name: String,

    /// Commit author email
    #[arg(long, default_value = "")]
    pub(crate) author_email: String,

    /// Text appended to every commit message after a blank line
    #[arg(long, default_value = "")]
    pub(crate) commit_message_appendix: String,

    /// Proceed even if Flux was installed by another tool (Helm, the AKS extension)
    #[arg(long)]
    pub(crate) force: bool,

    /// Create the branch from the default branch when it does not exist
    #[arg(long)]
    pub(crate) create_branch: bool,

    /// Create the repository through the Azure DevOps REST API when it does not exist
    #[arg(long)]
    pub(crate) create_repository: bool,

    /// What the cluster's Secret holds in token auth: `push` the push PAT (as flux does),
    /// `mint` a read-only PAT (Code (Read)) made for this cluster with your Entra ID token
    /// from `az login`
    #[arg(long, value_enum, default_value = "push", value_name = "WHICH")]
    pub(crate) cluster_pat: ClusterPat,

    /// Lifetime of a minted cluster PAT, in days (the organization may set a lower maximum)
    #[arg(long, default_value_t = 90, value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..=365))]
    pub(crate) cluster_pat_days: u32,

    /// Show what would change in the repository and the cluster; write nothing
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Answer yes to every confirmation (non-interactive use)
    #[arg(short = 'y', long)]
    pub(crate) yes: bool,

    /// Bootstrap every context of the kubeconfig (a fleet; see `--path` placeholders)
    #[arg(long, conflicts_with = "context_selector")]
    pub(crate) all_contexts: bool,

    /// Bootstrap every kubeconfig context whose name matches this regular expression
    #[arg(long, value_name = "REGEX")]
    pub(crate) context_selector: Option<String>,

    /// Clusters of a fleet bootstrapped at the same time
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) parallel: u16,

    /// Commit the component and sync manifests together, in one commit
    #[arg(long)]
    pub(crate) single_commit: bool,
}

impl Cli {
    /// Refuses several `--context` flags for subcommands that work on one cluster.
    pub(crate) fn check_contexts(&self) -> Result<(), clap::Error> {
        if self.global.context.len() > 1 && !matches!(self.command, Command::Azdo(_)) {
            return Err(<Self as clap::CommandFactory>::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "`--context` may be given only once here (several contexts are for `azdo`)",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Check only the prerequisites (Kubernetes version, cluster-admin rights, existing installs)
    #[arg(long)]
    pub(crate) pre: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    #[command(flatten)]
    pub(crate) repo: RepoArgs,

    /// Branch used to validate the new PAT
    #[arg(long, default_value = "main")]
    pub(crate) branch: String,

    /// Name of the Secret holding the Git credentials
    #[arg(long, default_value = "flux-system")]
    pub(crate) secret_name: String,

    /// Mint a new read-only cluster PAT with your Entra ID token (`az login`) instead of
    /// storing a PAT you give; the one minted before is revoked once Flux works with the new
    #[arg(long)]
    pub(crate) mint: bool,

    /// Lifetime of the minted PAT, in days
    #[arg(long, default_value_t = 90, value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..=365))]
    pub(crate) cluster_pat_days: u32,
}

#[derive(Debug, Args)]
pub(crate) struct UninstallArgs {
    /// Keep the Flux namespace
    #[arg(long)]
    pub(crate) keep_namespace: bool,

    /// List what would be deleted; delete nothing
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Do not ask for confirmation
    #[arg(short = 's', long)]
    pub(crate) silent: bool,
}

/// `--registry-creds`: the user and the password (kept secret) of a container registry.
#[derive(Debug, Clone)]
pub(crate) struct RegistryCreds {
    pub(crate) username: String,
    pub(crate) password: SecretString,
}

/// `user:password`, exactly one `:` as flux requires; the error never echoes the value.
fn parse_registry_creds(value: &str) -> Result<RegistryCreds, String> {
    match value.split(':').collect::<Vec<_>>().as_slice() {
        [user, password] => Ok(RegistryCreds {
            username: (*user).to_owned(),
            password: fluxbootstrap_auth::SecretString::from((*password).to_owned()),
        }),
        _ => Err("expected `USER:PASSWORD` with exactly one `:`".to_owned()),
    }
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Repository URL written into the GitRepository
    #[arg(long)]
    pub(crate) url: String,

    /// SSH host the cluster syncs over, e.g. `ssh.dev.azure.com` (the files of PAT push +
    /// SSH sync)
    #[arg(long, value_name = "HOST[:PORT]")]
    pub(crate) ssh_hostname: Option<String>,

    #[command(flatten)]
    pub(crate) render: RenderArgs,

    /// Write the files under this directory instead of printing them
    #[arg(long, value_name = "DIR")]
    pub(crate) output_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct VersionArgs {
    /// Do not contact the cluster
    #[arg(long)]
    pub(crate) client: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionArgs {
    /// Shell to generate the script for
    pub(crate) shell: clap_complete::Shell,
}

/// Parses a flag's value straight into a secret: it is never held as a plain `String`, and
/// the argument structs' `Debug` shows it redacted.
#[expect(
    clippy::unnecessary_wraps,
    reason = "the signature clap's value parsers have"
)]
fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn secret_flags_are_secrets_from_the_start() {
        use clap::Parser as _;
        let cli = Cli::try_parse_from([
            "kubectl-fluxbootstrap",
            "azdo",
            "--url",
            "https://dev.azure.com/o/p/_git/r",
            "--password",
            "pat-hunter2",
            "--token",
            "token-hunter2",
            "--gpg-passphrase",
            "gpg-hunter2",
            "--ssh-signing-password",
            "ssh-hunter2",
            "--ssh-signing-key-file",
            "/k",
        ])
        .expect("the flags parse");
        let debug = format!("{cli:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
