//! This process's libp2p node: one per process (kameo keeps it global),
//! TCP with noise and yamux, peers found by explicit dial, never by mDNS.

use std::time::Duration;

use futures::StreamExt;
use kameo::remote;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, noise, tcp, yamux};
use tokio::sync::{OnceCell, mpsc, oneshot};

use crate::error::RemoteError;
use crate::error::{Error, Result};

/// The most bytes one message may carry: a sync of many learners' shares
/// and totals is one message, so the default 1 MiB is too small.
const MESSAGE_LIMIT: u64 = 256 << 20;

/// How long an ask may wait for its reply before the caller retries.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// This process's node.
#[derive(Debug)]
pub struct Node {
    /// Its identity.
    pub peer: PeerId,
    /// Where it listens, as bound (the port filled in).
    pub listening: Multiaddr,
    dial: mpsc::UnboundedSender<Multiaddr>,
}

static NODE: OnceCell<Node> = OnceCell::const_new();

/// `127.0.0.1:7000` or a multiaddr such as `/ip4/127.0.0.1/tcp/7000`.
pub fn parse_addr(text: &str) -> Result<Multiaddr> {
    if let Ok(sock) = text.parse::<std::net::SocketAddr>() {
        let ip = match sock.ip() {
            std::net::IpAddr::V4(ip) => format!("/ip4/{ip}"),
            std::net::IpAddr::V6(ip) => format!("/ip6/{ip}"),
        };
        return format!("{ip}/tcp/{}", sock.port())
            .parse()
            .map_err(|e| Error::invalid("address", text, format!("{e}")));
    }
    text.parse().map_err(|e| {
        Error::invalid(
            "address",
            text,
            format!("{e}; use HOST:PORT (127.0.0.1:7000) or a multiaddr (/ip4/127.0.0.1/tcp/7000)"),
        )
    })
}

/// Starts this process's node listening on `listen`, or returns the one
/// already started (whatever it listens on).
pub async fn node(listen: &Multiaddr) -> Result<&'static Node> {
    NODE.get_or_try_init(|| start(listen.clone())).await
}

/// This process's node, if it has started.
pub fn current() -> Option<&'static Node> {
    NODE.get()
}

impl Node {
    /// Dials `addr`; once connected, the peer's registry is searchable.
    pub fn dial(&self, addr: Multiaddr) {
        let _ = self.dial.send(addr);
    }
}

async fn start(listen: Multiaddr) -> Result<Node> {
    let failed = |what: &str, e: &dyn std::fmt::Display| RemoteError::Transport {
        what: what.into(),
        problem: e.to_string(),
    };
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| failed("cannot set up TCP", &e))?
        .with_behaviour(|key| {
            remote::Behaviour::new(
                key.public().to_peer_id(),
                remote::messaging::Config::default()
                    .with_request_timeout(REPLY_TIMEOUT)
                    .with_request_size_maximum(MESSAGE_LIMIT)
                    .with_response_size_maximum(MESSAGE_LIMIT),
            )
        })
        .map_err(|e| failed("cannot set up the node", &e))?
        // A learner process may sit between syncs for as long as a trial lasts.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    swarm
        .behaviour()
        .try_init_global()
        .map_err(|e| failed("cannot start the node", &e))?;
    swarm
        .listen_on(listen.clone())
        .map_err(|e| failed(&format!("cannot listen on {listen}"), &e))?;
    let peer = *swarm.local_peer_id();
    let (dial, mut dials) = mpsc::unbounded_channel::<Multiaddr>();
    let (bound, bound_rx) = oneshot::channel();
    let mut bound = Some(bound);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        tracing::info!(%address, "listening");
                        if let Some(tx) = bound.take() {
                            let _ = tx.send(Ok(address));
                        }
                    }
                    SwarmEvent::ListenerError { error, .. } => {
                        tracing::warn!(%error, "listener failed");
                    }
                    SwarmEvent::ListenerClosed { reason: Err(error), .. } => {
                        if let Some(tx) = bound.take() {
                            let _ = tx.send(Err(error.to_string()));
                        }
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                        tracing::debug!(%peer_id, "connected");
                        // Lookups search the peers the registry knows.
                        if endpoint.is_dialer() {
                            swarm.add_peer_address(peer_id, endpoint.get_remote_address().clone());
                        }
                    }
                    SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
                        tracing::debug!(%peer_id, ?cause, "disconnected");
                    }
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        tracing::debug!(%error, "dial failed");
                    }
                    _ => {}
                },
                Some(addr) = dials.recv() => {
                    if let Err(error) = swarm.dial(addr.clone()) {
                        tracing::warn!(%addr, %error, "cannot dial");
                    }
                }
            }
        }
    });
    let listening = tokio::time::timeout(Duration::from_secs(10), bound_rx)
        .await
        .map_err(|_| RemoteError::Transport {
            what: listen.to_string(),
            problem: "the listener did not start in 10 s".into(),
        })?
        .map_err(|_| RemoteError::Transport {
            what: listen.to_string(),
            problem: "the node stopped".into(),
        })?
        .map_err(|e| RemoteError::Transport {
            what: format!("cannot listen on {listen}"),
            problem: e.to_string(),
        })?;
    Ok(Node {
        peer,
        listening,
        dial,
    })
}
