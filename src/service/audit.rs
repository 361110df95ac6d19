//! The audit log's vocabulary: every change Postier records, as one enum whose variants carry
//! their typed details, and where each event is listed (its scope, computed here only).
//! Details name ids, logins, addresses and settings, never a password, hash or token
//! (docs/decisions.md "Secrets"). Recording an event also queues, in the same transaction,
//! its delivery to each webhook endpoint of the organization that subscribes to it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::InsertStatement;
use sea_orm::ConnectionTrait;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{
    AccountBinding, AddressFor, AddressKind, MailProtocol, Pack, Permission, PermissionSet, Role,
};
use crate::entity::{address, mail_service};
use crate::error::{ApiError, ApiResult};
use crate::repo::{self, events::Actor, events::Scope};

/// One recorded change. The action name (`address.created`…) and the details are what the
/// audit log, its feed and webhooks (the payload's `type` and `data.details`) carry; the
/// OpenAPI document's `webhooks` section is generated from this schema.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "action", content = "details")]
#[schema(as = AuditChange)]
pub enum Change {
    #[serde(rename = "account.created")]
    AccountCreated,
    #[serde(rename = "account.updated")]
    AccountUpdated { display_name: Option<String> },
    /// Changed by the account itself, or through an address unified with it.
    #[serde(rename = "account.password_changed")]
    AccountPasswordChanged {
        #[serde(skip_serializing_if = "Option::is_none")]
        unified_addresses_updated: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        via: Option<PasswordChangeVia>,
        #[serde(skip_serializing_if = "Option::is_none")]
        address: Option<String>,
    },
    /// A verification link was sent again on request (sign-up sends the first).
    #[serde(rename = "account.verification_sent")]
    AccountVerificationSent,
    #[serde(rename = "account.login_verified")]
    AccountLoginVerified,
    /// A link went to `new_login`; the login changes once it is followed.
    #[serde(rename = "account.login_change_requested")]
    AccountLoginChangeRequested { new_login: String },
    #[serde(rename = "account.login_changed")]
    AccountLoginChanged {
        from: String,
        to: String,
        /// Addresses that were unified with the account because they were its old login.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        unification_ended: Vec<String>,
    },
    /// Recorded for accounts that exist only (the answer is the same for any login).
    #[serde(rename = "account.password_reset_requested")]
    AccountPasswordResetRequested,
    #[serde(rename = "account.deleted")]
    AccountDeleted {
        organizations_deleted: usize,
        organizations_left: usize,
        accesses_removed: usize,
    },
    #[serde(rename = "account.totp_enrolment_started")]
    TotpEnrolmentStarted,
    #[serde(rename = "account.totp_enabled")]
    TotpEnabled { recovery_codes: usize },
    #[serde(rename = "account.totp_disabled")]
    TotpDisabled,
    #[serde(rename = "account.recovery_code_used")]
    RecoveryCodeUsed { remaining: u64 },
    #[serde(rename = "session.created")]
    SessionCreated,
    #[serde(rename = "session.reauthenticated")]
    SessionReauthenticated,
    #[serde(rename = "session.ended")]
    SessionEnded,
    #[serde(rename = "session.revoked")]
    SessionRevoked { reason: &'static str },
    /// A personal API token was created (its secret is never recorded).
    #[serde(rename = "api_token.created")]
    ApiTokenCreated {
        token_id: Uuid,
        name: String,
        scopes: Vec<crate::service::api_tokens::ApiTokenScope>,
        organization_id: Option<Uuid>,
        expires_at: DateTime<Utc>,
    },
    #[serde(rename = "api_token.revoked")]
    ApiTokenRevoked { token_id: Uuid, name: String },
    #[serde(rename = "organization.created")]
    OrganizationCreated { name: String, personal: bool },
    #[serde(rename = "organization.renamed")]
    OrganizationRenamed { name: String },
    /// Deleted with its last owner's account, holding no mail service.
    #[serde(rename = "organization.deleted")]
    OrganizationDeleted { reason: &'static str },
    #[serde(rename = "member_invitation.created")]
    MemberInvitationCreated {
        member_invitation_id: Uuid,
        login: String,
        role: Role,
    },
    #[serde(rename = "member_invitation.accepted")]
    MemberInvitationAccepted {
        member_invitation_id: Uuid,
        account_id: Uuid,
        login: String,
    },
    #[serde(rename = "member_invitation.declined")]
    MemberInvitationDeclined { member_invitation_id: Uuid },
    #[serde(rename = "member_invitation.revoked")]
    MemberInvitationRevoked { member_invitation_id: Uuid },
    #[serde(rename = "member.added")]
    MemberAdded { account_id: Uuid, role: Role },
    #[serde(rename = "member.role_changed")]
    MemberRoleChanged {
        account_id: Uuid,
        from: Role,
        to: Role,
    },
    #[serde(rename = "member.removed")]
    MemberRemoved { account_id: Uuid, role: Role },
    #[serde(rename = "member.left")]
    MemberLeft { account_id: Uuid, role: Role },
    #[serde(rename = "mail_service.created")]
    MailServiceCreated { pack: Pack },
    #[serde(rename = "mail_service.pack_changed")]
    MailServicePackChanged { from: Pack, to: Pack },
    #[serde(rename = "mail_service.default_permissions_changed")]
    MailServiceDefaultPermissionsChanged {
        #[schema(value_type = Vec<Permission>)]
        default_permissions: PermissionSet,
    },
    #[serde(rename = "mail_service.deleted")]
    MailServiceDeleted { addresses_removed: u64 },
    #[serde(rename = "domain.linked")]
    DomainLinked,
    #[serde(rename = "domain.unlinked")]
    DomainUnlinked {},
    /// The live DNS check found the domain's ownership record: it now counts.
    #[serde(rename = "domain.proven")]
    DomainProven {},
    /// Another organization proved the domain first: this unproven claim ended.
    #[serde(rename = "domain.claim_ended")]
    DomainClaimEnded {},
    #[serde(rename = "address.created")]
    AddressCreated {
        kind: AddressKind,
        #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
        for_: Option<AddressFor>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        import: bool,
    },
    #[serde(rename = "address.updated")]
    AddressUpdated { display_name: Option<String> },
    #[serde(rename = "address.deleted")]
    AddressDeleted { accesses_removed: u64 },
    #[serde(rename = "address.password_changed")]
    AddressPasswordChanged {
        /// `account_password` when it followed a unified account's password.
        #[serde(skip_serializing_if = "Option::is_none")]
        via: Option<PasswordChangeVia>,
        unified: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        was_unified: Option<bool>,
    },
    #[serde(rename = "address.attached")]
    AddressAttached { account_id: Uuid, login: String },
    #[serde(rename = "alias.created")]
    AliasCreated,
    #[serde(rename = "alias.deleted")]
    AliasDeleted,
    #[serde(rename = "forward.created")]
    ForwardCreated {
        forward_id: Uuid,
        target: String,
        keep_copy: bool,
    },
    #[serde(rename = "forward.updated")]
    ForwardUpdated {
        forward_id: Uuid,
        target: String,
        keep_copy: bool,
    },
    #[serde(rename = "forward.deleted")]
    ForwardDeleted { forward_id: Uuid, target: String },
    #[serde(rename = "forward.confirmed")]
    ForwardConfirmed { forward_id: Uuid, target: String },
    /// The target refused by the e-mailed link: the forward is gone.
    #[serde(rename = "forward.refused")]
    ForwardRefused { forward_id: Uuid, target: String },
    #[serde(rename = "auto_reply.saved")]
    AutoReplySaved {
        enabled: bool,
        starts_at: Option<DateTime<Utc>>,
        ends_at: Option<DateTime<Utc>>,
    },
    #[serde(rename = "auto_reply.deleted")]
    AutoReplyDeleted,
    #[serde(rename = "access.updated")]
    AccessUpdated {
        account_id: Uuid,
        #[schema(value_type = Vec<Permission>)]
        permissions: PermissionSet,
    },
    #[serde(rename = "access.removed")]
    AccessRemoved { account_id: Uuid },
    #[serde(rename = "invitation.created")]
    InvitationCreated {
        invitation_id: Uuid,
        /// The invited member's login, or the e-mail an external invitee was invited at.
        invitee: String,
        #[schema(value_type = Vec<Permission>)]
        permissions: PermissionSet,
        account_binding: AccountBinding,
    },
    #[serde(rename = "invitation.accepted")]
    InvitationAccepted {
        invitation_id: Uuid,
        account_id: Uuid,
        login: String,
    },
    #[serde(rename = "invitation.declined")]
    InvitationDeclined { invitation_id: Uuid },
    #[serde(rename = "invitation.revoked")]
    InvitationRevoked { invitation_id: Uuid },
    /// Sent again with a new link (the previous one stopped working) and a new expiry.
    #[serde(rename = "invitation.resent")]
    InvitationResent {
        invitation_id: Uuid,
        expires_at: DateTime<Utc>,
    },
    #[serde(rename = "share_link.created")]
    ShareLinkCreated {
        share_link_id: Uuid,
        #[schema(value_type = Vec<Permission>)]
        permissions: PermissionSet,
        expires_at: DateTime<Utc>,
        max_uses: i32,
    },
    #[serde(rename = "share_link.redeemed")]
    ShareLinkRedeemed {
        share_link_id: Uuid,
        account_id: Uuid,
        login: String,
    },
    #[serde(rename = "share_link.revoked")]
    ShareLinkRevoked { share_link_id: Uuid },
    /// A device password of `account_id`'s access (the secret is never recorded).
    #[serde(rename = "device_password.created")]
    DevicePasswordCreated {
        device_password_id: Uuid,
        account_id: Uuid,
        label: String,
        protocols: Vec<MailProtocol>,
        expires_at: Option<DateTime<Utc>>,
    },
    #[serde(rename = "device_password.revoked")]
    DevicePasswordRevoked {
        device_password_id: Uuid,
        account_id: Uuid,
        label: String,
    },
    /// Every device password of `account_id`'s access at once.
    #[serde(rename = "device_password.revoked_all")]
    DevicePasswordsRevoked { account_id: Uuid, count: u64 },
    #[serde(rename = "webhook.created")]
    WebhookCreated {
        webhook_id: Uuid,
        url: String,
        /// `null`: every event.
        event_types: Option<Vec<String>>,
    },
    #[serde(rename = "webhook.updated")]
    WebhookUpdated {
        webhook_id: Uuid,
        url: String,
        event_types: Option<Vec<String>>,
        enabled: bool,
    },
    #[serde(rename = "webhook.secret_rotated")]
    WebhookSecretRotated {
        webhook_id: Uuid,
        /// Until when the previous secret still signs.
        previous_valid_until: DateTime<Utc>,
    },
    /// Postier disabled the endpoint: it failed without a single success since
    /// `failing_since`.
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled {
        webhook_id: Uuid,
        url: String,
        failing_since: DateTime<Utc>,
    },
    #[serde(rename = "webhook.deleted")]
    WebhookDeleted { webhook_id: Uuid, url: String },
}

/// Every action name, in the order of [`Change`] (a test compares them with its schema).
pub const ACTIONS: &[&str] = &[
    "account.created",
    "account.updated",
    "account.password_changed",
    "account.verification_sent",
    "account.login_verified",
    "account.login_change_requested",
    "account.login_changed",
    "account.password_reset_requested",
    "account.deleted",
    "account.totp_enrolment_started",
    "account.totp_enabled",
    "account.totp_disabled",
    "account.recovery_code_used",
    "session.created",
    "session.reauthenticated",
    "session.ended",
    "session.revoked",
    "api_token.created",
    "api_token.revoked",
    "organization.created",
    "organization.renamed",
    "organization.deleted",
    "member_invitation.created",
    "member_invitation.accepted",
    "member_invitation.declined",
    "member_invitation.revoked",
    "member.added",
    "member.role_changed",
    "member.removed",
    "member.left",
    "mail_service.created",
    "mail_service.pack_changed",
    "mail_service.default_permissions_changed",
    "mail_service.deleted",
    "domain.linked",
    "domain.unlinked",
    "domain.proven",
    "domain.claim_ended",
    "address.created",
    "address.updated",
    "address.deleted",
    "address.password_changed",
    "address.attached",
    "alias.created",
    "alias.deleted",
    "forward.created",
    "forward.updated",
    "forward.deleted",
    "forward.confirmed",
    "forward.refused",
    "auto_reply.saved",
    "auto_reply.deleted",
    "access.updated",
    "access.removed",
    "invitation.created",
    "invitation.accepted",
    "invitation.declined",
    "invitation.revoked",
    "invitation.resent",
    "share_link.created",
    "share_link.redeemed",
    "share_link.revoked",
    "device_password.created",
    "device_password.revoked",
    "device_password.revoked_all",
    "webhook.created",
    "webhook.updated",
    "webhook.secret_rotated",
    "webhook.disabled",
    "webhook.deleted",
];

/// What a password change came through, when not the direct way.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PasswordChangeVia {
    /// The account password changed, and the address is unified with it.
    AccountPassword,
    /// The address password changed, and the account is unified with it.
    UnifiedAddress,
    /// A password reset link was followed.
    PasswordReset,
}

impl Change {
    /// The action name and the details, as stored.
    fn split(&self) -> ApiResult<(String, Option<serde_json::Value>)> {
        let mut value = serde_json::to_value(self).map_err(ApiError::internal)?;
        let action = value
            .get("action")
            .and_then(|a| a.as_str())
            .map(str::to_string)
            .ok_or_else(|| ApiError::internal("an audit change without an action name"))?;
        let details = value.as_object_mut().and_then(|o| o.remove("details"));
        Ok((action, details))
    }

    /// The action name (`address.created`…).
    pub fn action(&self) -> ApiResult<String> {
        self.split().map(|(action, _)| action)
    }
}

/// Where events are listed: the organization always, its mail service and address when the
/// change is theirs. Built only by these constructors.
impl Scope {
    pub fn organization(organization_id: Uuid) -> Self {
        Scope {
            organization_id: Some(organization_id),
            ..Scope::default()
        }
    }

    /// The log of an account's own changes: its personal organization's, or none once it
    /// left it.
    pub fn personal(personal_organization_id: Option<Uuid>) -> Self {
        Scope {
            organization_id: personal_organization_id,
            ..Scope::default()
        }
    }

    pub fn service(service: &mail_service::Model) -> Self {
        Scope {
            organization_id: Some(service.organization_id),
            mail_service_id: Some(service.id),
            address_id: None,
        }
    }

    pub fn address(service: &mail_service::Model, address: &address::Model) -> Self {
        Scope {
            address_id: Some(address.id),
            ..Scope::service(service)
        }
    }
}

/// What recording an event did besides the event itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recorded {
    /// Webhook deliveries queued for it.
    pub deliveries: usize,
}

/// Records `change` on `target` (a login, an address, an id) in the caller's transaction,
/// with a delivery for each subscribed webhook endpoint of its organization.
pub async fn record(
    conn: &impl ConnectionTrait,
    at: DateTime<Utc>,
    actor: &Actor,
    scope: Scope,
    change: &Change,
    target: &str,
) -> ApiResult<Recorded> {
    let event = Event::new(at, actor, scope, change, target)?;
    conn.execute(&event.insert).await?;
    let Some(data) = event.webhook_data else {
        return Ok(Recorded::default());
    };
    let deliveries =
        crate::service::webhooks::queue::for_event(conn, &event.action, at, data).await?;
    Ok(Recorded { deliveries })
}

/// An event about to be written: the statement inserting it, and, for an event of an
/// organization, what its webhook deliveries carry.
pub(crate) struct Event {
    pub action: String,
    pub insert: InsertStatement,
    pub webhook_data: Option<crate::service::webhooks::payload::EventData>,
}

impl Event {
    pub(crate) fn new(
        at: DateTime<Utc>,
        actor: &Actor,
        scope: Scope,
        change: &Change,
        target: &str,
    ) -> ApiResult<Self> {
        let (action, details) = change.split()?;
        let (id, insert) =
            repo::events::insert_statement(at, actor, scope, &action, target, details.clone());
        let webhook_data = scope.organization_id.map(|organization_id| {
            crate::service::webhooks::payload::EventData {
                id,
                organization_id,
                mail_service_id: scope.mail_service_id,
                address_id: scope.address_id,
                actor_account_id: actor.account_id,
                target: target.to_string(),
                details,
            }
        });
        Ok(Self {
            action,
            insert,
            webhook_data,
        })
    }
}

/// Records a change to an account itself (its profile, password or sessions) in the log of
/// its personal organization, where the account, as owner, reads it (none once it left it).
pub async fn record_for_account(
    conn: &impl ConnectionTrait,
    at: DateTime<Utc>,
    actor: &Actor,
    account_id: Uuid,
    change: &Change,
    target: &str,
) -> ApiResult<Recorded> {
    let scope = personal_scope(conn, account_id).await?;
    record(conn, at, actor, scope, change, target).await
}

/// Where a change to an account itself is recorded ([`Scope::personal`]).
pub async fn personal_scope(conn: &impl ConnectionTrait, account_id: Uuid) -> ApiResult<Scope> {
    let personal = repo::organizations::personal_of(conn, account_id).await?;
    Ok(Scope::personal(personal.map(|o| o.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_list_is_the_change_schema_s() {
        let schema = serde_json::to_value(<Change as utoipa::PartialSchema>::schema()).unwrap();
        let actions: Vec<String> = schema["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|branch| {
                branch["properties"]["action"]["enum"][0]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(actions, ACTIONS);
    }

    #[test]
    fn changes_keep_their_wire_names_and_detail_shapes() {
        let (action, details) = Change::AccountCreated.split().unwrap();
        assert_eq!((action.as_str(), details), ("account.created", None));
        let (action, details) = Change::AddressCreated {
            kind: AddressKind::Personal,
            for_: Some(AddressFor::Me),
            import: false,
        }
        .split()
        .unwrap();
        assert_eq!(action, "address.created");
        assert_eq!(
            details,
            Some(serde_json::json!({ "kind": "personal", "for": "me" }))
        );
        let (_, details) = Change::DomainUnlinked {}.split().unwrap();
        assert_eq!(details, Some(serde_json::json!({})));
        let (_, details) = Change::AccountUpdated { display_name: None }
            .split()
            .unwrap();
        assert_eq!(details, Some(serde_json::json!({ "display_name": null })));
    }
}
