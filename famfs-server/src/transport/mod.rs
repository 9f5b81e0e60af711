//! The transports between the kernel and the [`Adapter`](crate::Adapter): the /dev/fuse
//! read/writev loop ([`dev`]) and FUSE over io_uring ([`uring`], with its per-queue
//! machinery in `ring`). [`session`](crate::session) picks one per connection.

pub mod dev;
mod ring;
pub mod uring;
