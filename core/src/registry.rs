//! The provider registry, filled at link time through `inventory`.
//!
//! A provider crate registers itself with one line, which also enrols it in the conformance
//! kit by naming its fixture:
//!
//! ```text
//! pylon_core::inventory::submit! {
//!     pylon_core::ProviderRegistration::new(|| Box::new(MyProvider)).with_conformance(my_fixture)
//! }
//! ```
//!
//! `inventory` yields registrations in an undefined order, so [`Registry::from_inventory`]
//! sorts them by platform id and rejects duplicate platform ids or slugs at start-up rather
//! than letting one silently shadow another.

use crate::fixture::FixtureFactory;
use crate::provider::Provider;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One provider's registration: a constructor and the provider's conformance fixture, both
/// function pointers so the value can be `const`.
pub struct ProviderRegistration {
    pub build: fn() -> Box<dyn Provider>,
    /// The fixture the conformance kit runs this provider against. A test walks every
    /// registration and fails for one without a fixture, so enrolment is not optional.
    pub conformance: Option<FixtureFactory>,
}

impl ProviderRegistration {
    pub const fn new(build: fn() -> Box<dyn Provider>) -> Self {
        Self {
            build,
            conformance: None,
        }
    }

    /// Names the provider's conformance fixture.
    pub const fn with_conformance(self, fixture: FixtureFactory) -> Self {
        Self {
            build: self.build,
            conformance: Some(fixture),
        }
    }

    /// Every registration linked into the binary, in an undefined order.
    pub fn linked() -> impl Iterator<Item = &'static ProviderRegistration> {
        inventory::iter::<ProviderRegistration>.into_iter()
    }
}

inventory::collect!(ProviderRegistration);

/// Why the registry could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("two providers register the platform id `{0}`")]
    DuplicatePlatform(String),
    #[error("two providers register the route slug `{0}`")]
    DuplicateSlug(String),
    #[error("provider `{platform}` has an invalid route slug `{slug}`: use lowercase letters, digits and dashes")]
    InvalidSlug { platform: String, slug: String },
}

/// The registered providers, sorted by platform id, addressable by platform id or slug.
#[derive(Clone, Default)]
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
    by_slug: BTreeMap<&'static str, usize>,
    by_platform: BTreeMap<&'static str, usize>,
}

impl Registry {
    /// Builds the registry from every provider linked into the binary.
    pub fn from_inventory() -> Result<Self, RegistryError> {
        Self::from_providers(
            inventory::iter::<ProviderRegistration>
                .into_iter()
                .map(|registration| Arc::from((registration.build)())),
        )
    }

    /// Builds a registry from explicit providers (tests, embedding).
    pub fn from_providers(
        providers: impl IntoIterator<Item = Arc<dyn Provider>>,
    ) -> Result<Self, RegistryError> {
        let mut providers: Vec<Arc<dyn Provider>> = providers.into_iter().collect();
        providers.sort_by_key(|p| p.descriptor().platform);
        let mut by_slug = BTreeMap::new();
        let mut by_platform = BTreeMap::new();
        for (index, provider) in providers.iter().enumerate() {
            let descriptor = provider.descriptor();
            if !is_valid_slug(descriptor.slug) {
                return Err(RegistryError::InvalidSlug {
                    platform: descriptor.platform.to_owned(),
                    slug: descriptor.slug.to_owned(),
                });
            }
            if by_platform.insert(descriptor.platform, index).is_some() {
                return Err(RegistryError::DuplicatePlatform(
                    descriptor.platform.to_owned(),
                ));
            }
            if by_slug.insert(descriptor.slug, index).is_some() {
                return Err(RegistryError::DuplicateSlug(descriptor.slug.to_owned()));
            }
        }
        Ok(Self {
            providers,
            by_slug,
            by_platform,
        })
    }

    /// Providers in platform-id order.
    pub fn providers(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }

    pub fn by_slug(&self, slug: &str) -> Option<&Arc<dyn Provider>> {
        self.by_slug.get(slug).map(|&i| &self.providers[i])
    }

    pub fn by_platform(&self, platform: &str) -> Option<&Arc<dyn Provider>> {
        self.by_platform.get(platform).map(|&i| &self.providers[i])
    }
}

fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
