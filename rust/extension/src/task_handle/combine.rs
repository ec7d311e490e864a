//! `TaskHandle.when_all` / `when_any`: Variants in and out around `threadkit_core::combine`,
//! which does the counting on whichever thread ends each handle.

use std::sync::{Arc, Weak};

use godot::prelude::*;
use threadkit_core::combine::{Failed, Read, all_of, first_of};
use threadkit_core::{CancelOutcome, Task};

use super::{CLASS, HandleRef, Keep, Link, Source, TaskHandle};
use crate::describe;
use crate::problem::Problem;
use crate::send::SendVariant;

pub(super) fn when_all(handles: &VarArray) -> Gd<TaskHandle> {
    let method = "when_all";
    let links = match links_of(method, handles) {
        Ok(links) => links,
        Err(problem) => return refused(problem),
    };
    let weak: Vec<Weak<Link>> = links.iter().map(Arc::downgrade).collect();
    let (handle, parent, keep) = combined();
    let parts: Vec<_> = links.iter().map(|link| link.task().clone()).collect();
    all_of(
        &parent,
        &parts,
        keep,
        read(),
        |results| results.into_iter().collect::<SendVariant>(),
        failed(parts.len()),
        move |index, reach| {
            weak[index]
                .upgrade()
                .map_or(CancelOutcome::TooLate, |link| link.cancel_reaching(reach))
        },
    );
    handle
}

pub(super) fn when_any(handles: &VarArray) -> Gd<TaskHandle> {
    let method = "when_any";
    let links = match links_of(method, handles) {
        Ok(links) if links.is_empty() => {
            return refused(
                Problem::new(
                    CLASS,
                    method,
                    "the Array is empty, so no handle could ever end first",
                )
                .fix("pass at least one TaskHandle."),
            );
        }
        Ok(links) => links,
        Err(problem) => return refused(problem),
    };
    let (handle, parent, keep) = combined();
    let parts: Vec<_> = links.iter().map(|link| link.task().clone()).collect();
    first_of(
        &parent,
        &parts,
        keep,
        read(),
        |index, result| {
            [SendVariant::detach((index as i64).to_variant()), result]
                .into_iter()
                .collect()
        },
        failed(parts.len()),
    );
    handle
}

/// A combined handle, its task, and what keeps it alive while its parts can end it.
fn combined() -> (Gd<TaskHandle>, Arc<Task<SendVariant>>, Arc<Keep>) {
    let keep = Arc::new(Keep(parking_lot::Mutex::new(None)));
    let handle = TaskHandle::outside(
        Task::outside(0),
        Source::Combined,
        Some(Arc::downgrade(&keep)),
    );
    *keep.0.lock() = Some(HandleRef(handle.clone()));
    let task = handle.bind().link().task().clone();
    (handle, task, keep)
}

fn read() -> Read<SendVariant> {
    Box::new(|result: &SendVariant| SendVariant::detach(result.copy()))
}

fn failed(count: usize) -> Failed {
    Box::new(move |index, message| format!("handle {index} of {count} failed: {message}"))
}

/// The handles' links, or the error for the first element that is not a TaskHandle.
fn links_of<'a>(method: &'a str, handles: &VarArray) -> Result<Vec<Arc<Link>>, Problem<'a>> {
    handles
        .iter_shared()
        .enumerate()
        .map(|(index, value)| match value.try_to::<Gd<TaskHandle>>() {
            Ok(handle) => Ok(handle.bind().link().clone()),
            Err(_) => Err(Problem::new(
                CLASS,
                method,
                format!(
                    "element {index} of the Array is {}, not a TaskHandle",
                    describe::value(&value)
                ),
            )
            .fix("pass an Array of TaskHandles (from AsyncTaskProcessor.run(), TaskHandle.create_pending(), ...).")),
        })
        .collect()
}

/// Reports `problem` and returns a handle that has already failed with its message.
#[track_caller]
fn refused(problem: Problem<'_>) -> Gd<TaskHandle> {
    let message = problem.message();
    problem.report();
    let task = Task::outside(0);
    task.settle(Err(message));
    TaskHandle::outside(task, Source::Failed, None)
}
