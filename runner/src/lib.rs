//! catwalk-runner: the process inside every deployment's machine. (The local stand-in for
//! the Fly Machines API that runs each "machine" as a runner process is `catwalk-machines`
//! in `tools/machines`, kept out of this crate so the machine image never carries it.)
//!
//! - [`launch`]: the launch spec → argv (never a shell) and the child's environment;
//! - [`ready`]: the readiness probe at boot (`starting` → `ready` | `failed`);
//! - [`session`]: one child per MCP session, the warm spares, and the routing of every
//!   message;
//! - [`crashes`]: which child exits are a crash loop, and the back-off that follows;
//! - [`bounded`]: the FIFO (count and bytes) behind its replay buffer and backlog;
//! - [`serve`]: MCP Streamable HTTP on `/mcp`, `/health`, `/logs`;
//! - [`modern`]: 2026-07-28 requests on `/mcp` (checked, bridged or passed through);
//! - [`pool`]: the bounded pool of children that serve them, and their era;
//! - [`ring`]: the child's stderr, bounded and masked;
//! - [`lines`]: reading that stderr with a byte cap per line;
//! - [`http`]: HTTP plumbing (also used by `catwalk-machines`);
//! - [`clock`]: wall-clock time as RFC 3339 text.

pub mod bounded;
pub mod clock;
pub mod crashes;
pub mod http;
pub mod launch;
pub mod lines;
pub mod modern;
pub mod pool;
pub mod ready;
pub mod ring;
pub mod serve;
pub mod session;
