//! Which clusters a run bootstraps, and where each lives in the repository.
//!
//! Without fleet flags the target is the kubeconfig's current context (or `--context`, or the
//! connection flags alone), like kubectl. With several `--context`s, `--all-contexts`,
//! `--context-selector` or a placeholder in `--path`, the contexts come from the same merged
//! kubeconfig the cluster crate connects with.

use std::collections::HashMap;

use anyhow::Result;
use fluxbootstrap_plan::RepoPaths;

use crate::cli::{AzdoArgs, GlobalArgs};
use crate::error::Hinted;
use crate::inputs::kube_options;

/// The placeholders `--path` may hold in a fleet.
const PLACEHOLDERS: [&str; 3] = ["{context}", "{cluster}", "{namespace}"];

/// Whether the command line selects its clusters as a fleet: then every line names its
/// cluster and the run ends with a table.
pub(crate) fn fleet_wanted(args: &AzdoArgs, global: &GlobalArgs) -> bool {
    global.context.len() > 1
        || args.all_contexts
        || args.context_selector.is_some()
        || PLACEHOLDERS.iter().any(|p| args.render.path.contains(p))
}

/// One selected cluster and where it lives in the repository.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The kubeconfig context; `None` for the current context (or the connection flags).
    pub(crate) context: Option<String>,
    pub(crate) paths: RepoPaths,
}

/// The clusters the flags select, with their rendered paths; refuses colliding paths.
pub(crate) fn select(args: &AzdoArgs, global: &GlobalArgs) -> Result<Vec<Target>> {
    let namespace = global.namespace.as_str();
    if !fleet_wanted(args, global) {
        return Ok(vec![Target {
            context: global.context.first().cloned(),
            paths: RepoPaths::new(&args.render.path, namespace)?,
        }]);
    }
    let explicit = !global.context.is_empty();
    if explicit && (args.all_contexts || args.context_selector.is_some()) {
        return Err(Hinted::new(
            "`--context` cannot be combined with `--all-contexts` or `--context-selector`",
            "name the contexts with `--context`, or select them with one of the other two",
        )
        .into());
    }
    let needs_kubeconfig = !explicit || args.render.path.contains("{cluster}");
    let kubeconfig = if needs_kubeconfig {
        fluxbootstrap_cluster::kubeconfig_contexts(&kube_options(global))?
    } else {
        fluxbootstrap_cluster::KubeContexts::default()
    };
    let mut contexts: Vec<String> = if explicit {
        let mut seen = Vec::new();
        for c in &global.context {
            if !seen.contains(c) {
                seen.push(c.clone());
            }
        }
        seen
    } else if args.all_contexts {
        kubeconfig.names.clone()
    } else if let Some(selector) = &args.context_selector {
        // The regex crate (already in the lockfile through other dependencies) gives linear-time
        // matching, so a user-supplied pattern cannot blow up.
        let regex = regex::Regex::new(selector).map_err(|err| {
            Hinted::new(
                format!("`--context-selector {selector}` is not a valid regular expression: {err}"),
                "pass a regular expression such as `^prod-`",
            )
        })?;
        kubeconfig
            .names
            .iter()
            .filter(|n| regex.is_match(n))
            .cloned()
            .collect()
    } else {
        kubeconfig.current.clone().into_iter().collect()
    };
    contexts.retain(|c| !c.is_empty());
    if contexts.is_empty() {
        return Err(Hinted::new(
            "no kubeconfig context was selected",
            "check `kubectl config get-contexts`, or name the contexts with `--context`",
        )
        .into());
    }

    let mut targets = Vec::with_capacity(contexts.len());
    let mut by_path: HashMap<String, String> = HashMap::new();
    for context in contexts {
        let cluster = global
            .cluster
            .clone()
            .or_else(|| kubeconfig.clusters.get(&context).cloned())
            .unwrap_or_else(|| context.clone());
        let rendered = render_path(&args.render.path, &context, &cluster, namespace)?;
        let paths = RepoPaths::new(&rendered, namespace)?;
        if let Some(first) = by_path.insert(paths.sync_path(), context.clone()) {
            return Err(Hinted::new(
                format!(
                    "contexts \"{first}\" and \"{context}\" both render `--path {}` to \"{}\"",
                    args.render.path,
                    paths.sync_path()
                ),
                "give every cluster its own directory, e.g. `--path clusters/{context}`",
            )
            .into());
        }
        targets.push(Target {
            context: Some(context),
            paths,
        });
    }
    Ok(targets)
}

fn render_path(template: &str, context: &str, cluster: &str, namespace: &str) -> Result<String> {
    let mut rest = template.to_owned();
    for p in PLACEHOLDERS {
        rest = rest.replace(p, "");
    }
    if rest.contains('{') || rest.contains('}') {
        return Err(Hinted::new(
            format!("`--path {template}` has an unknown placeholder"),
            "use `{context}`, `{cluster}` or `{namespace}`",
        )
        .into());
    }
    Ok(template
        .replace("{context}", context)
        .replace("{cluster}", cluster)
        .replace("{namespace}", namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_templates_render_and_refuse_unknown_placeholders() {
        assert_eq!(
            render_path("clusters/{cluster}/{context}-{namespace}", "a", "b", "ns")
                .expect("known placeholders render"),
            "clusters/b/a-ns"
        );
        assert!(render_path("clusters/{name}", "a", "b", "ns").is_err());
    }
}
