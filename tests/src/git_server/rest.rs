//! The REST subset of `azure-devops.md` §4 (projects, repositories, refs, connectionData), with
//! Azure DevOps' answers to bad credentials: 401 with `X-TFS-FedAuthRedirect: Suppress`, else a
//! 203 HTML sign-in page.

use base64::Engine as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::http::{Body, Credential, authenticate, full, json, tf_error, unauthorized};
use super::state::{Access, CreateError, ProjectMeta, RepoMeta, State, decode_segment};

/// Largest accepted request body (repository creation options are tiny).
const MAX_BODY: usize = 64 * 1024;

pub(crate) async fn handle(
    state: &State,
    req: Request<Incoming>,
    segments: &[String],
) -> Response<Body> {
    let suppress = req
        .headers()
        .get("x-tfs-fedauthredirect")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("suppress"));
    let access = match authenticate(state, req.headers(), false) {
        Credential::Valid(access) => access,
        Credential::Missing | Credential::Invalid => {
            let redirects = req.method() == Method::GET || req.method() == Method::POST;
            return if suppress || !redirects {
                unauthorized(state)
            } else {
                sign_in_page(state)
            };
        }
    };
    let query = Query::parse(req.uri().query().unwrap_or(""));
    let Some(apis_at) = segments.iter().position(|s| s == "_apis") else {
        return not_found_route();
    };
    let org = &segments[0];
    let rest: Vec<&str> = segments[apis_at + 1..].iter().map(String::as_str).collect();
    let method = req.method().clone();
    match (apis_at, &method, rest.as_slice()) {
        (1, &Method::GET, ["projects"]) => list_projects(state, org),
        (1, &Method::GET, ["projects", project]) => get_project(state, org, project, &query),
        (1, &Method::GET, [name]) if name.eq_ignore_ascii_case("connectionData") => {
            connection_data(state, &query)
        }
        (1, &Method::GET, ["git", "repositories", id]) => match state.find_repo_by_id(org, id) {
            Some(meta) => json(StatusCode::OK, &repo_json(state, &meta)),
            None => repo_not_found(id),
        },
        (1, &Method::GET, ["git", "repositories", id, "refs"]) => {
            match state.find_repo_by_id(org, id) {
                Some(meta) => refs(&meta, &query).await,
                None => repo_not_found(id),
            }
        }
        (2, _, rest) => {
            let project = &segments[1];
            let Some(project_meta) = state.find_project(org, project) else {
                return project_not_found(project);
            };
            match (&method, rest) {
                (&Method::GET, ["git", "repositories"]) => {
                    let value: Vec<Value> = state
                        .list_repos(org, &project_meta.id)
                        .iter()
                        .map(|meta| repo_json(state, meta))
                        .collect();
                    json(
                        StatusCode::OK,
                        &json!({"count": value.len(), "value": value}),
                    )
                }
                (&Method::POST, ["git", "repositories"]) => {
                    create_repo(state, &project_meta, access, req).await
                }
                (&Method::GET, ["git", "repositories", repo]) => {
                    match state.find_repo(org, &project_meta.id, repo) {
                        Some(meta) => json(StatusCode::OK, &repo_json(state, &meta)),
                        None => repo_not_found(repo),
                    }
                }
                (&Method::GET, ["git", "repositories", repo, "refs"]) => {
                    match state.find_repo(org, &project_meta.id, repo) {
                        Some(meta) => refs(&meta, &query).await,
                        None => repo_not_found(repo),
                    }
                }
                _ => not_found_route(),
            }
        }
        _ => not_found_route(),
    }
}

/// Decoded query parameters.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Query {
        Query(
            raw.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    let decode = |s: &str| {
                        decode_segment(&s.replace('+', " ")).unwrap_or_else(|| s.to_owned())
                    };
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

fn sign_in_page(state: &State) -> Response<Body> {
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>Azure DevOps Services | Sign In</title></head>\n\
         <body><form method=\"post\" action=\"{}/_signin\"><p>Sign in to your account</p>\
         </form></body></html>\n",
        state.https_base()
    );
    let mut response = Response::new(full(page));
    *response.status_mut() = StatusCode::NON_AUTHORITATIVE_INFORMATION;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

fn not_found_route() -> Response<Body> {
    tf_error(
        StatusCode::NOT_FOUND,
        "VS800075: The project or resource requested by this route does not exist on the test git server.",
        "RouteNotFoundException",
    )
}

fn project_not_found(project: &str) -> Response<Body> {
    tf_error(
        StatusCode::NOT_FOUND,
        &format!(
            "TF200016: The following project does not exist: {project}. Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server."
        ),
        "ProjectDoesNotExistWithNameException",
    )
}

fn repo_not_found(repo: &str) -> Response<Body> {
    tf_error(
        StatusCode::NOT_FOUND,
        &format!(
            "TF401019: The Git repository with name or identifier {repo} does not exist or you do not have permissions for the operation you are attempting."
        ),
        "GitRepositoryNotFoundException",
    )
}

fn project_ref_json(state: &State, project: &ProjectMeta) -> Value {
    json!({
        "id": project.id,
        "name": project.name,
        "url": format!("{}/{}/_apis/projects/{}", state.https_base(), project.org, project.id),
        "state": "wellFormed",
        "revision": 1,
        "visibility": "private",
        "lastUpdateTime": project.created,
    })
}

fn list_projects(state: &State, org: &str) -> Response<Body> {
    let value: Vec<Value> = state
        .list_projects(org)
        .iter()
        .map(|p| project_ref_json(state, p))
        .collect();
    json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    )
}

fn get_project(state: &State, org: &str, project: &str, query: &Query) -> Response<Body> {
    let Some(meta) = state.find_project(org, project) else {
        return project_not_found(project);
    };
    let base = state.https_base();
    let mut body = project_ref_json(state, &meta);
    body["description"] = json!("");
    body["_links"] = json!({
        "self": {"href": format!("{base}/{}/_apis/projects/{}", meta.org, meta.id)},
        "collection": {"href": format!("{base}/{}/_apis/projectCollections/{}", meta.org, state.instance_id)},
        "web": {"href": format!("{base}/{}/{}", meta.org, super::state::encode_segment(&meta.name))},
    });
    body["defaultTeam"] = json!({
        "id": super::state::guid(),
        "name": format!("{} Team", meta.name),
        "url": format!("{base}/{}/_apis/projects/{}/teams", meta.org, meta.id),
    });
    if query
        .get("includeCapabilities")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        body["capabilities"] = json!({
            "versioncontrol": {"sourceControlType": "Git", "gitEnabled": "True", "tfvcEnabled": "False"},
            "processTemplate": {"templateName": "Agile", "templateTypeId": "adcc42ab-9882-485e-a3ed-7678f01f66bc"},
        });
    }
    json(StatusCode::OK, &body)
}

/// The refs of a bare repository as `(name, sha)`.
async fn read_refs(meta: &RepoMeta) -> Vec<(String, String)> {
    let output = tokio::process::Command::new("git")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_DIR", &meta.bare_path)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["for-each-ref", "--format=%(refname) %(objectname)"])
        .output()
        .await;
    output
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (name, sha) = line.split_once(' ')?;
            Some((name.to_owned(), sha.to_owned()))
        })
        .collect()
}

fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(entries) = fs_err::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => dir_size(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

fn repo_json(state: &State, meta: &RepoMeta) -> Value {
    repo_json_with(state, meta, default_branch_blocking(meta))
}

fn repo_json_with(state: &State, meta: &RepoMeta, default_branch: Option<String>) -> Value {
    let base = state.https_base();
    let project = state
        .find_project(&meta.org, &meta.project_id)
        .map_or(Value::Null, |p| project_ref_json(state, &p));
    let https = state.https_url(meta);
    let remote_url = https.replacen(
        "https://",
        &format!("https://{}@", super::state::encode_segment(&meta.org)),
        1,
    );
    let mut body = json!({
        "id": meta.id,
        "name": meta.name,
        "url": format!("{base}/{}/{}/_apis/git/repositories/{}", meta.org, meta.project_id, meta.id),
        "project": project,
        "size": if default_branch.is_some() { dir_size(&meta.bare_path.join("objects")) } else { 0 },
        "remoteUrl": remote_url,
        "sshUrl": state.ssh_url(meta),
        "webUrl": https,
        "isDisabled": false,
        "isFork": false,
        "isInMaintenance": false,
        "validRemoteUrls": [remote_url, state.ssh_url(meta)],
        "_links": {
            "self": {"href": format!("{base}/{}/{}/_apis/git/repositories/{}", meta.org, meta.project_id, meta.id)},
            "project": {"href": format!("{base}/{}/_apis/projects/{}", meta.org, meta.project_id)},
            "web": {"href": https},
        },
    });
    if let Some(branch) = default_branch {
        body["defaultBranch"] = json!(branch);
    }
    body
}

/// The default branch, read synchronously (small file reads and one short git call).
fn default_branch_blocking(meta: &RepoMeta) -> Option<String> {
    let head = fs_err::read_to_string(meta.bare_path.join("HEAD")).unwrap_or_default();
    let output = std::process::Command::new("git")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_DIR", &meta.bare_path)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["for-each-ref", "--format=%(refname)", "refs/heads/"])
        .output()
        .ok()?;
    let branches = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut branches = branches.lines();
    let target = head.trim().strip_prefix("ref: ").map(str::to_owned);
    match target {
        Some(target) if branches.clone().any(|b| b == target) => Some(target),
        _ => branches.next().map(str::to_owned),
    }
}

/// Refs in name order, a page at a time like Azure DevOps: at most `$top` (capped at 1000)
/// per answer, and while more remain an opaque `x-ms-continuationtoken` header whose value
/// the next request passes as `continuationToken`.
async fn refs(meta: &RepoMeta, query: &Query) -> Response<Body> {
    const MAX_PAGE: usize = 1000;
    let mut refs = read_refs(meta).await;
    refs.sort();
    let prefix = query
        .get("filter")
        .map(|f| format!("refs/{}", f.trim_start_matches("refs/")));
    let page_size = query
        .get("$top")
        .and_then(|top| top.parse::<usize>().ok())
        .map_or(MAX_PAGE, |top| top.clamp(1, MAX_PAGE));
    let after = query.get("continuationToken").map(|token| {
        String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .unwrap_or_default(),
        )
        .unwrap_or_default()
    });
    let matching: Vec<&(String, String)> = refs
        .iter()
        .filter(|(name, _)| prefix.as_ref().is_none_or(|p| name.starts_with(p.as_str())))
        .filter(|(name, _)| after.as_ref().is_none_or(|after| name > after))
        .collect();
    let more = matching.len() > page_size;
    let page = &matching[..matching.len().min(page_size)];
    let value: Vec<Value> = page
        .iter()
        .map(|(name, sha)| {
            json!({
                "name": name,
                "objectId": sha,
                "creator": {"displayName": "Test User", "id": "00000000-0000-0000-0000-000000000001"},
                "url": format!("{}/refs?filter={}", meta.id, name.trim_start_matches("refs/")),
            })
        })
        .collect();
    let mut response = json(
        StatusCode::OK,
        &json!({"value": value, "count": value.len()}),
    );
    if more && let Some((last, _)) = page.last() {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last);
        response.headers_mut().insert(
            "x-ms-continuationtoken",
            HeaderValue::from_str(&token).expect("base64 is a valid header value"),
        );
    }
    response
}

fn valid_repo_name(name: &str) -> bool {
    const FORBIDDEN: &str = "/:\\~&%;@'\"?<>|#$*}{,+=[]";
    !name.is_empty()
        && name.chars().count() <= 64
        && !name.starts_with('_')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name
            .chars()
            .any(|c| c.is_control() || FORBIDDEN.contains(c))
}

async fn create_repo(
    state: &State,
    project: &ProjectMeta,
    access: Access,
    req: Request<Incoming>,
) -> Response<Body> {
    if access == Access::ReadOnly {
        return tf_error(
            StatusCode::FORBIDDEN,
            &format!(
                "TF401027: You need the Git 'CreateRepository' permission to perform this action. Details: identity 'Test User', scope 'project {}'.",
                project.name
            ),
            "GitNeedsPermissionException",
        );
    }
    let bytes = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return tf_error(
                StatusCode::BAD_REQUEST,
                "The request body is too large or could not be read.",
                "InvalidArgumentValueException",
            );
        }
    };
    let Ok(options) = serde_json::from_slice::<Value>(&bytes) else {
        return tf_error(
            StatusCode::BAD_REQUEST,
            "Value cannot be null.\r\nParameter name: repositoryToCreate",
            "ArgumentNullException",
        );
    };
    let Some(name) = options.get("name").and_then(Value::as_str) else {
        return tf_error(
            StatusCode::BAD_REQUEST,
            "Value cannot be null.\r\nParameter name: name",
            "ArgumentNullException",
        );
    };
    if !valid_repo_name(name) {
        return tf_error(
            StatusCode::BAD_REQUEST,
            &format!("TF401025: '{name}' is not a valid name for a Git repository."),
            "InvalidArgumentValueException",
        );
    }
    match state.create_repo_in(&project.org, &project.name, name, true) {
        Ok(meta) => json(StatusCode::CREATED, &repo_json_with(state, &meta, None)),
        Err(CreateError::Exists) => tf_error(
            StatusCode::CONFLICT,
            &format!("TF400948: A Git repository with the name {name} already exists."),
            "GitRepositoryNameAlreadyExistsException",
        ),
        Err(CreateError::NoProject) => project_not_found(&project.name),
    }
}

fn connection_data(state: &State, query: &Query) -> Response<Body> {
    if !query
        .get("api-version")
        .is_some_and(|v| v.to_ascii_lowercase().contains("-preview"))
    {
        return tf_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "VS800071: The -preview flag must be supplied in the api-version for such requests. For example: \"{}-preview\"",
                query.get("api-version").unwrap_or("7.1")
            ),
            "VssInvalidPreviewVersionException",
        );
    }
    let user = json!({
        "id": state.user_id,
        "descriptor": format!("Microsoft.IdentityModel.Claims.ClaimsIdentity;{}\\test-user@example.invalid", state.tenant_id),
        "subjectDescriptor": "aad.dGVzdC11c2Vy",
        "providerDisplayName": "Test User",
        "isActive": true,
        "properties": {"Account": {"$type": "System.String", "$value": "test-user@example.invalid"}},
        "resourceVersion": 2,
        "metaTypeId": 0,
    });
    json(
        StatusCode::OK,
        &json!({
            "authenticatedUser": user,
            "authorizedUser": user,
            "instanceId": state.instance_id,
            "deploymentId": state.instance_id,
            "deploymentType": "hosted",
            "locationServiceData": {
                "serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
                "defaultAccessMappingMoniker": "PublicAccessMapping",
                "lastChangeId": 1,
                "lastChangeId64": 1,
            },
        }),
    )
}
