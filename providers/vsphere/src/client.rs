//! A vCenter session over the vSphere Web Services (SOAP) API: connect, check that the
//! endpoint is a supported vCenter, log in, read what Pylon needs, log out.
//!
//! [`VcenterSession`] is built to live long: connection tests open one and close it at once,
//! and polling (GUIDE section 5) keeps one per connection, calling
//! [`VcenterSession::keepalive`] well inside vCenter's idle timeout. Inventory is read in bulk
//! (one `ContainerView` per type and one `RetrievePropertiesEx` for all of them), never one
//! call per object.
//!
//! Failures are returned as [`SessionError`], which keeps the typed cause (the vSphere fault,
//! the `reqwest` error, the HTTP status and content type, what the TLS verifier saw) so
//! [`crate::classify`] can map it to a category without reading error strings.

use crate::config::VsphereTarget;
use crate::soap::{parse_version, BootstrapError, HttpAnswer, SoapTransport};
use crate::tls::{self, TlsObservation, TlsObservationSlot};
use pylon_core::{InventoryCounts, SystemIdentity};
use std::sync::Arc;
use std::time::Duration;
use vim_rs::core::client::{Error as VimError, VimClient};
use vim_rs::mo;
use vim_rs::types::boxed_types::ValueElements;
use vim_rs::types::structs::{
    ManagedObjectReference, MethodFault, ObjectSpec, PropertyFilterSpec, PropertySpec,
    RetrieveOptions, ServiceContent,
};
use vim_rs::types::vim_any::VimAny;

/// The oldest vSphere API Pylon talks to.
pub(crate) const MINIMUM_API_VERSION: [u32; 4] = [6, 5, 0, 0];
/// How the minimum is named in messages.
pub(crate) const MINIMUM_API_VERSION_TEXT: &str = "6.5";

/// The `about.apiType` of a vCenter Server.
const API_TYPE_VCENTER: &str = "VirtualCenter";

/// Managed object types counted for the connection summary, in [`InventoryCounts`] order.
const COUNTED_TYPES: [&str; 3] = ["HostSystem", "VirtualMachine", "Datastore"];

/// Which step of talking to vCenter was under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// TCP, TLS and the anonymous `RetrieveServiceContent`.
    Connect,
    Login,
    Inventory,
    Keepalive,
}

impl Stage {
    /// The stage as a phrase for messages ("while logging in").
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Connect => "connecting",
            Self::Login => "logging in",
            Self::Inventory => "reading the inventory",
            Self::Keepalive => "checking the session",
        }
    }

    /// The stage as a log field.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Login => "login",
            Self::Inventory => "inventory",
            Self::Keepalive => "keepalive",
        }
    }
}

/// Why talking to vCenter failed, with its typed cause.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    /// The TLS configuration or HTTP client could not be built (a bad CA certificate).
    #[error("could not set up the connection: {0}")]
    Setup(String),
    /// No HTTP answer: connect, DNS, TLS, timeout or a dropped connection.
    #[error("transport failure while {}", stage.describe())]
    Transport {
        stage: Stage,
        source: Arc<reqwest::Error>,
        /// What the TLS verifier saw in this handshake, if one took place.
        tls: TlsObservation,
    },
    /// `/sdk` answered, but not with a vSphere `ServiceContent`.
    #[error("the endpoint answered HTTP {} but is not a vSphere API", answer.status)]
    NotVsphere { answer: HttpAnswer },
    /// A typed vSphere fault.
    #[error("vSphere fault in answer to {method}")]
    Fault {
        stage: Stage,
        method: &'static str,
        fault: Arc<MethodFault>,
    },
    /// An HTTP error status without a typed fault, after the endpoint proved to be vSphere.
    #[error("HTTP {} in answer to {method}", answer.status)]
    HttpFailure {
        stage: Stage,
        method: &'static str,
        answer: HttpAnswer,
    },
    /// A response that could not be understood (malformed XML, missing fields).
    #[error("malformed answer to {method}")]
    Malformed { stage: Stage, method: &'static str },
    /// The endpoint is vSphere, but not a vCenter Server (`about.apiType`).
    #[error("not a vCenter Server")]
    NotVcenter { api_type: String, product: String },
    /// The vCenter runs an API older than [`MINIMUM_API_VERSION`].
    #[error("vSphere API too old")]
    ApiTooOld { api_version: String },
    /// `about.apiVersion` is not a dotted version number.
    #[error("unreadable vSphere API version")]
    UnreadableApiVersion,
    /// No answer within the allowed time (the caller's overall deadline).
    #[error("timed out while {}", stage.describe())]
    TimedOut { stage: Stage, after: Duration },
}

/// Timeouts for the HTTP requests of one session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionOptions {
    /// TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// One whole request, from sending to the last byte of the answer.
    pub request_timeout: Duration,
}

/// What vCenter says about itself (`ServiceContent.about`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct About {
    pub name: String,
    pub product: String,
    pub version: String,
    pub build: String,
    pub instance_uuid: String,
    pub api_type: String,
    pub api_version: String,
}

impl About {
    pub(crate) fn system_identity(&self) -> SystemIdentity {
        SystemIdentity {
            name: self.name.clone(),
            product: self.product.clone(),
            version: self.version.clone(),
            build: self.build.clone(),
            instance_uuid: self.instance_uuid.clone(),
        }
    }
}

/// A supported vCenter endpoint whose `ServiceContent` has been read, before login.
pub(crate) struct VcenterEndpoint {
    transport: Arc<SoapTransport>,
    tls: TlsObservationSlot,
}

impl VcenterEndpoint {
    /// Connects to `target`'s `/sdk`, reads the `ServiceContent` anonymously and checks that
    /// the endpoint is a vCenter Server with a supported API version. No credentials are
    /// sent to an endpoint that fails these checks.
    pub(crate) async fn connect(
        target: &VsphereTarget,
        options: &SessionOptions,
    ) -> Result<Self, SessionError> {
        if !target.use_https {
            tracing::warn!(
                address = %target.address(),
                "connecting to vCenter over plain HTTP: the password crosses the network unencrypted"
            );
        }
        let (tls_config, tls) = tls::client_config(&target.trust)
            .map_err(|error| SessionError::Setup(format!("TLS configuration: {error}")))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config)
            // SOAP sessions are a cookie (`vmware_soap_session`).
            .cookie_store(true)
            // A redirect means the endpoint is not the API (typically a web UI); following
            // it would only hide that.
            .redirect(reqwest::redirect::Policy::none())
            // Proxies from the environment are not applied: a connection talks to the
            // configured vCenter directly, so credentials never take a detour nobody
            // configured for this connection.
            .no_proxy()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .build()
            .map_err(|error| SessionError::Setup(format!("HTTP client: {error}")))?;

        let transport = SoapTransport::bootstrap(http, target.endpoint_url())
            .await
            .map_err(|error| match error {
                BootstrapError::Http(source) => SessionError::Transport {
                    stage: Stage::Connect,
                    source: Arc::new(source),
                    tls: tls.get(),
                },
                BootstrapError::NotVsphere(answer) => SessionError::NotVsphere { answer },
                BootstrapError::Fault(fault) => SessionError::Fault {
                    stage: Stage::Connect,
                    method: "RetrieveServiceContent",
                    fault,
                },
            })?;

        let about = &transport.service_content().about;
        if about.api_type != API_TYPE_VCENTER {
            return Err(SessionError::NotVcenter {
                api_type: about.api_type.clone(),
                product: about.full_name.clone(),
            });
        }
        match parse_version(&about.api_version) {
            None => return Err(SessionError::UnreadableApiVersion),
            Some(version) if version < MINIMUM_API_VERSION => {
                return Err(SessionError::ApiTooOld {
                    api_version: about.api_version.clone(),
                })
            }
            Some(_) => {}
        }
        Ok(Self {
            transport: Arc::new(transport),
            tls,
        })
    }

    /// Logs in with the target's credentials.
    pub(crate) async fn login(
        self,
        target: &VsphereTarget,
    ) -> Result<VcenterSession, SessionError> {
        let session = VcenterSession {
            transport: self.transport,
            tls: self.tls,
        };
        let session_manager =
            session
                .content()
                .session_manager
                .clone()
                .ok_or(SessionError::Malformed {
                    stage: Stage::Login,
                    method: "RetrieveServiceContent",
                })?;
        let result = mo::SessionManager::new(session.client(), &session_manager.value)
            .login(&target.username, target.password.expose(), None)
            .await;
        match result {
            Ok(_) => Ok(session),
            Err(error) => {
                // No session exists, so dropping this one must not send a Logout.
                session.transport.mark_logged_out();
                Err(session.failure(Stage::Login, "Login", error))
            }
        }
    }
}

/// An authenticated vCenter session. Log out with [`VcenterSession::close`]; a session
/// dropped without it logs out in the background.
pub(crate) struct VcenterSession {
    transport: Arc<SoapTransport>,
    tls: TlsObservationSlot,
}

impl VcenterSession {
    /// Connects, checks the endpoint and logs in.
    pub(crate) async fn open(
        target: &VsphereTarget,
        options: &SessionOptions,
    ) -> Result<Self, SessionError> {
        VcenterEndpoint::connect(target, options)
            .await?
            .login(target)
            .await
    }

    fn client(&self) -> Arc<dyn VimClient> {
        self.transport.clone()
    }

    fn content(&self) -> &ServiceContent {
        self.transport.service_content()
    }

    /// What vCenter says about itself.
    pub(crate) fn about(&self) -> About {
        let about = &self.content().about;
        About {
            name: about.name.clone(),
            product: about.full_name.clone(),
            version: about.version.clone(),
            build: about.build.clone(),
            instance_uuid: about.instance_uuid.clone().unwrap_or_default(),
            api_type: about.api_type.clone(),
            api_version: about.api_version.clone(),
        }
    }

    /// Counts ESXi hosts, virtual machines and datastores: one recursive `ContainerView`
    /// per type on the root folder, whose `view` properties are read in one
    /// `RetrievePropertiesEx`. The views are destroyed afterwards, also on failure.
    pub(crate) async fn count_inventory(&self) -> Result<InventoryCounts, SessionError> {
        let stage = Stage::Inventory;
        let view_manager = self
            .content()
            .view_manager
            .clone()
            .ok_or(SessionError::Malformed {
                stage,
                method: "RetrieveServiceContent",
            })?;
        let view_manager = mo::ViewManager::new(self.client(), &view_manager.value);
        let root = self.content().root_folder.clone();

        let mut views = Vec::with_capacity(COUNTED_TYPES.len());
        let mut counted = Ok([0u64; 3]);
        for kind in COUNTED_TYPES {
            match view_manager
                .create_container_view(&root, Some(&[kind.to_owned()]), true)
                .await
            {
                Ok(view) => views.push(view),
                Err(error) => {
                    counted = Err(self.failure(stage, "CreateContainerView", error));
                    break;
                }
            }
        }
        if counted.is_ok() {
            counted = self.count_view_members(&views).await;
        }
        for view in &views {
            if let Err(error) = mo::ContainerView::new(self.client(), &view.value)
                .destroy_view()
                .await
            {
                // A leftover view is released with the session at logout.
                tracing::debug!(view = %view.value, error = %error, "could not destroy a container view");
            }
        }
        let [agents, vms, storage] = counted?;
        Ok(InventoryCounts {
            agents,
            vms,
            storage,
        })
    }

    /// Reads the `view` property of every view in one call; answers the member counts in
    /// the order of `views`.
    async fn count_view_members(
        &self,
        views: &[ManagedObjectReference],
    ) -> Result<[u64; 3], SessionError> {
        let stage = Stage::Inventory;
        let spec = PropertyFilterSpec {
            prop_set: vec![PropertySpec {
                r#type: "ContainerView".to_owned(),
                all: Some(false),
                path_set: Some(vec!["view".to_owned()]),
            }],
            object_set: views
                .iter()
                .map(|view| ObjectSpec {
                    obj: view.clone(),
                    skip: Some(false),
                    select_set: None,
                })
                .collect(),
            report_missing_objects_in_results: None,
        };
        let collector =
            mo::PropertyCollector::new(self.client(), &self.content().property_collector.value);
        let mut counts = [0u64; 3];
        let mut page = collector
            .retrieve_properties_ex(&[spec], &RetrieveOptions { max_objects: None })
            .await
            .map_err(|error| self.failure(stage, "RetrievePropertiesEx", error))?;
        while let Some(result) = page {
            for object in &result.objects {
                let Some(index) = views.iter().position(|view| view.value == object.obj.value)
                else {
                    continue;
                };
                let members = object
                    .prop_set
                    .iter()
                    .flatten()
                    .filter(|property| property.name == "view")
                    .map(|property| match &property.val {
                        VimAny::Value(ValueElements::ArrayOfManagedObjectReference(refs)) => {
                            refs.len()
                        }
                        _ => 0,
                    })
                    .sum::<usize>();
                if let Some(slot) = counts.get_mut(index) {
                    *slot = u64::try_from(members).unwrap_or(u64::MAX);
                }
            }
            page = match result.token {
                Some(token) => Some(
                    collector
                        .continue_retrieve_properties_ex(&token)
                        .await
                        .map_err(|error| {
                            self.failure(stage, "ContinueRetrievePropertiesEx", error)
                        })?,
                ),
                None => None,
            };
        }
        Ok(counts)
    }

    /// Sends one method call whose XML is already built (see [`crate::inventory::request`])
    /// and answers the raw response body, for the hot paths our own reader parses.
    pub(crate) async fn call_raw(
        &self,
        stage: Stage,
        method: &'static str,
        body: &str,
    ) -> Result<String, SessionError> {
        self.transport
            .call_xml(method, body)
            .await
            .map_err(|error| self.failure(stage, method, error))
    }

    pub(crate) fn property_collector(&self) -> crate::inventory::types::MoRef {
        to_moref(&self.content().property_collector)
    }

    pub(crate) fn view_manager(&self) -> Option<crate::inventory::types::MoRef> {
        self.content().view_manager.as_ref().map(to_moref)
    }

    pub(crate) fn root_folder(&self) -> crate::inventory::types::MoRef {
        to_moref(&self.content().root_folder)
    }

    /// The `EventManager` (absent on some endpoints; vCenter always has one).
    pub(crate) fn event_manager(&self) -> Option<crate::inventory::types::MoRef> {
        self.content().event_manager.as_ref().map(to_moref)
    }

    pub(crate) fn task_manager(&self) -> Option<crate::inventory::types::MoRef> {
        self.content().task_manager.as_ref().map(to_moref)
    }

    pub(crate) fn perf_manager(&self) -> Option<crate::inventory::types::MoRef> {
        self.content().perf_manager.as_ref().map(to_moref)
    }

    /// The vCenter settings `OptionManager` (`config.vpxd.*` options).
    pub(crate) fn setting_manager(&self) -> Option<crate::inventory::types::MoRef> {
        self.content().setting.as_ref().map(to_moref)
    }

    /// A cheap authenticated call (`CurrentTime`) that keeps the session from idling out
    /// and reveals an expired one (`NotAuthenticated`).
    pub(crate) async fn keepalive(&self) -> Result<(), SessionError> {
        mo::ServiceInstance::new(self.client(), "ServiceInstance")
            .current_time()
            .await
            .map(drop)
            .map_err(|error| self.failure(Stage::Keepalive, "CurrentTime", error))
    }

    /// Logs out. Idempotent; a failed logout is logged, not reported, because the session
    /// is abandoned either way and vCenter expires it.
    pub(crate) async fn close(&self) {
        if let Err(error) = self.transport.logout().await {
            tracing::debug!(error = %error, "vCenter logout failed");
        }
    }

    /// Turns a vim_rs error into a [`SessionError`], recovering the typed cause the
    /// transport recorded for answers without a vSphere fault.
    fn failure(&self, stage: Stage, method: &'static str, error: VimError) -> SessionError {
        match error {
            VimError::MethodFault(fault) => SessionError::Fault {
                stage,
                method,
                fault,
            },
            VimError::ReqwestError(source) => SessionError::Transport {
                stage,
                source,
                tls: self.tls.get(),
            },
            _ => match self.transport.take_untyped_failure() {
                Some(answer) => SessionError::HttpFailure {
                    stage,
                    method,
                    answer,
                },
                None => SessionError::Malformed { stage, method },
            },
        }
    }
}

fn to_moref(reference: &ManagedObjectReference) -> crate::inventory::types::MoRef {
    crate::inventory::types::MoRef::new(reference.r#type.as_str(), reference.value.as_str())
}

impl Drop for VcenterSession {
    fn drop(&mut self) {
        // vCenter limits concurrent sessions, so an abandoned one is logged out rather than
        // left to idle out. Only possible inside a Tokio runtime; `close` is the normal way.
        if self.transport.is_logged_out() {
            return;
        }
        let transport = self.transport.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = transport.logout().await {
                    tracing::debug!(error = %error, "background vCenter logout failed");
                }
            });
        }
    }
}
