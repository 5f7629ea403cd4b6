//! The krew plugin manifest from one typed definition ([`PLUGIN_SPEC`] and the release
//! matrix): the manifest with real checksums that `cargo xtask dist` writes for the custom
//! index, and the template krew-release-bot reads at release time
//! (`plugin-manifest/.krew.yaml`). The template is generated from the same definition
//! (`cargo xtask dist template`) and a test checks the committed one, so the two cannot drift.

use std::fmt::Write as _;

/// What krew shows about the plugin.
pub(super) struct PluginSpec {
    pub(super) name: &'static str,
    pub(super) homepage: &'static str,
    pub(super) short_description: &'static str,
    /// Paragraphs of `spec.description`, one line each in the YAML block.
    pub(super) description: &'static [&'static str],
    /// Paragraphs of `spec.caveats`, each a list of lines; an empty line between them.
    pub(super) caveats: &'static [&'static [&'static str]],
}

/// The plugin.
pub(super) const PLUGIN_SPEC: PluginSpec = PluginSpec {
    name: "fluxbootstrap",
    homepage: "https://github.com/kubectl-fluxbootstrap/kubectl-fluxbootstrap",
    short_description: "Bootstrap Flux from an Azure DevOps repository",
    description: &[
        "Installs Flux on the cluster of the current kubeconfig context and makes it",
        "sync from a Git repository hosted on Azure DevOps, committing the Flux",
        "manifests to that repository, as `flux bootstrap git` does for other Git",
        "servers. It authenticates to Azure DevOps with a personal access token",
        "(PAT), an SSH key or Azure workload identity. Re-running it upgrades or",
        "repairs an existing installation; it can also check, export, rotate the",
        "stored PAT and uninstall.",
    ],
    caveats: &[
        &[
            "This plugin needs cluster-admin rights on the target cluster (it installs",
            "CRDs, cluster roles and the Flux controllers) and credentials that can push",
            "to the Azure DevOps repository.",
        ],
        &[
            "With PAT authentication the token is stored in the cluster, in the Secret",
            "flux-system/flux-system, so that Flux can pull: anyone who can read that",
            "Secret can use the token. Plan its rotation before it expires. Pass the PAT",
            "in the GIT_PASSWORD environment variable or on stdin, never as an argument.",
        ],
    ],
};

/// Where a platform's archive is: still a krew-release-bot action, or released.
pub(super) enum Archive {
    /// `{{addURIAndSha "<url>" .TagName | indent 4 }}`, `url` holding `{{ .TagName }}` and
    /// `{{ .Version }}`.
    ReleaseBot { url_template: String },
    /// The archive's URI and the sha256 of its bytes.
    Released { uri: String, sha256: String },
}

/// One platform entry.
pub(super) struct Platform {
    pub(super) os: &'static str,
    pub(super) arch: &'static str,
    pub(super) bin: String,
    pub(super) archive: Archive,
}

/// The manifest text: `version` is the tag (or `{{ .TagName }}` in the template), `header` its
/// leading comment.
pub(super) fn render(header: &str, version: &str, platforms: &[Platform]) -> String {
    let spec = &PLUGIN_SPEC;
    let mut out = String::new();
    let _ = writeln!(out, "# {header}");
    out.push_str("apiVersion: krew.googlecontainertools.github.com/v1alpha2\n");
    out.push_str("kind: Plugin\nmetadata:\n");
    let _ = writeln!(out, "  name: {}", spec.name);
    out.push_str("spec:\n");
    let _ = writeln!(out, "  version: {version}");
    let _ = writeln!(out, "  homepage: {}", spec.homepage);
    let _ = writeln!(out, "  shortDescription: {}", spec.short_description);
    out.push_str("  description: |\n");
    for line in spec.description {
        let _ = writeln!(out, "    {line}");
    }
    out.push_str("  caveats: |\n");
    for (index, paragraph) in spec.caveats.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        for line in *paragraph {
            let _ = writeln!(out, "    {line}");
        }
    }
    out.push_str("  platforms:\n");
    for platform in platforms {
        out.push_str("  - selector:\n      matchLabels:\n");
        let _ = writeln!(out, "        os: {}", platform.os);
        let _ = writeln!(out, "        arch: {}", platform.arch);
        match &platform.archive {
            Archive::ReleaseBot { url_template } => {
                let _ = writeln!(
                    out,
                    "    {{{{addURIAndSha \"{url_template}\" .TagName | indent 4 }}}}"
                );
            }
            Archive::Released { uri, sha256 } => {
                let _ = writeln!(out, "    uri: {uri}");
                let _ = writeln!(out, "    sha256: {sha256}");
            }
        }
        let _ = writeln!(out, "    bin: {}", platform.bin);
    }
    out
}
