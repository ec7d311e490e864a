//! Core's task [`Status`] as GDScript sees it: the `AsyncTaskProcessor.STATUS_*` numbers and the
//! names `TaskHandle` prints. The one place that maps them, so the processor and the handle agree
//! without importing each other.

use threadkit_core::Status;

/// The id is unknown (never submitted, or long forgotten): a number with no core status.
pub const UNKNOWN: i64 = 0;
pub const PENDING: i64 = 1;
pub const RUNNING: i64 = 2;
pub const COMPLETED: i64 = 3;
pub const FAILED: i64 = 4;
pub const CANCELLED: i64 = 5;

/// The `STATUS_*` constant of `status`.
pub fn code(status: Status) -> i64 {
    match status {
        Status::Pending => PENDING,
        Status::Running => RUNNING,
        Status::Completed => COMPLETED,
        Status::Failed => FAILED,
        Status::Cancelled => CANCELLED,
    }
}

/// The lower-case word for `status`, as `TaskHandle`'s text shows it.
pub fn name(status: Status) -> &'static str {
    match status {
        Status::Pending => "pending",
        Status::Running => "running",
        Status::Completed => "completed",
        Status::Failed => "failed",
        Status::Cancelled => "cancelled",
    }
}
