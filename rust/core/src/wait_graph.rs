//! The wait-for graph: which task waits for which, across every pool, so that a wait that would
//! close a cycle (A waits for B, which waits for A, however many pools apart) is refused instead
//! of hanging both for good.
//!
//! A task that waits for another adds an edge from itself to the awaited task for as long as it
//! waits ([`WaitGraph::enter`] returns a guard). Before adding it, the graph is searched from the
//! awaited task along the edges for the waiter: finding it means the awaited task (or one it
//! waits for in turn) waits for the waiter, a cycle no wait in it can ever leave. Search and
//! insertion happen under one lock, so of several waits that close one cycle at the same time
//! exactly one finds it (the others were added first) and is refused; its task then goes on and
//! ends, and the other waits of the cycle end with it, one after the other.
//!
//! Only a thread running a task has an identity here. A thread that runs none (the main thread,
//! a `Thread`) cannot be waited for, so it is never part of a cycle and adds no edge. Edges leave
//! a task only while its thread waits in a wait, so every task on a cycle found is unfinished and
//! waiting: the cycle exists, it is not a stale record.
//!
//! The graph is one for the whole program ([`WaitGraph::global`]) because a cycle may run through
//! any number of pools; each pool gives it a name for the descriptions of cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::sync::Mutex;

/// A task in any pool: the number of its pool (unique for the life of the program) and the
/// task's id in that pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskRef {
    pub pool: u64,
    pub task: u64,
}

/// Which task waits for which, and the names of the pools, for the descriptions of cycles.
#[derive(Debug, Default)]
pub struct WaitGraph {
    state: Mutex<Graph>,
}

#[derive(Debug, Default)]
struct Graph {
    /// The tasks each waiting task waits for: one per thread of it that waits (several threads
    /// run the parts of a group task, and each may wait).
    edges: BTreeMap<TaskRef, Vec<TaskRef>>,
    names: BTreeMap<u64, String>,
}

/// A wait recorded in the graph; dropping it removes the record.
#[derive(Debug)]
pub struct Edge<'a> {
    graph: &'a WaitGraph,
    waiter: TaskRef,
    awaited: TaskRef,
}

/// A wait refused because it would close a cycle: the waiter, the task it wanted to wait for,
/// and on to the task that waits for the waiter. With their pools' names, for the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitCycle {
    tasks: Vec<(TaskRef, String)>,
}

impl WaitGraph {
    pub fn new() -> Self {
        Self::default()
    }

    /// The graph every pool records its waits in.
    #[cfg(not(loom))]
    pub fn global() -> &'static WaitGraph {
        static GLOBAL: std::sync::OnceLock<WaitGraph> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(WaitGraph::new)
    }

    /// The graph every pool records its waits in: one per loom execution.
    #[cfg(loom)]
    pub fn global() -> &'static WaitGraph {
        loom::lazy_static! {
            static ref GLOBAL: WaitGraph = WaitGraph::new();
        }
        &GLOBAL
    }

    /// Records that `waiter` waits for `awaited` until the returned edge is dropped, or refuses
    /// with the cycle that this wait would close (`awaited` waits, directly or through others,
    /// for `waiter`; or it is `waiter` itself).
    pub fn enter(&self, waiter: TaskRef, awaited: TaskRef) -> Result<Edge<'_>, WaitCycle> {
        let mut graph = self.state.lock().unwrap();
        if let Some(path) = graph.path(awaited, waiter) {
            let tasks = std::iter::once(waiter)
                .chain(path)
                .map(|task| (task, graph.name(task.pool)))
                .collect();
            return Err(WaitCycle { tasks });
        }
        graph.edges.entry(waiter).or_default().push(awaited);
        Ok(Edge {
            graph: self,
            waiter,
            awaited,
        })
    }

    /// How many waits are recorded now.
    pub fn waits(&self) -> usize {
        let graph = self.state.lock().unwrap();
        graph.edges.values().map(Vec::len).sum()
    }

    /// Names pool number `pool` in the descriptions of cycles.
    pub fn set_name(&self, pool: u64, name: impl Into<String>) {
        self.state.lock().unwrap().names.insert(pool, name.into());
    }

    /// Forgets the name of a pool that is gone.
    pub fn forget(&self, pool: u64) {
        self.state.lock().unwrap().names.remove(&pool);
    }

    fn leave(&self, waiter: TaskRef, awaited: TaskRef) {
        let mut graph = self.state.lock().unwrap();
        if let Some(awaits) = graph.edges.get_mut(&waiter) {
            if let Some(at) = awaits.iter().position(|&task| task == awaited) {
                awaits.swap_remove(at);
            }
            if awaits.is_empty() {
                graph.edges.remove(&waiter);
            }
        }
    }
}

impl Graph {
    /// The tasks from `from` to `to` along the edges, both included, if `to` can be reached.
    fn path(&self, from: TaskRef, to: TaskRef) -> Option<Vec<TaskRef>> {
        // The usual case, without allocating: the awaited task waits for nothing.
        if from != to && !self.edges.contains_key(&from) {
            return None;
        }
        // Depth first, remembering how each task was reached to rebuild the path.
        let mut reached_from = BTreeMap::new();
        let mut seen = BTreeSet::from([from]);
        let mut stack = vec![from];
        while let Some(task) = stack.pop() {
            if task == to {
                let mut path = vec![task];
                let mut at = task;
                while let Some(&previous) = reached_from.get(&at) {
                    path.push(previous);
                    at = previous;
                }
                path.reverse();
                return Some(path);
            }
            for &next in self.edges.get(&task).into_iter().flatten() {
                if seen.insert(next) {
                    reached_from.insert(next, task);
                    stack.push(next);
                }
            }
        }
        None
    }

    fn name(&self, pool: u64) -> String {
        self.names
            .get(&pool)
            .cloned()
            .unwrap_or_else(|| format!("pool {pool}"))
    }
}

impl Drop for Edge<'_> {
    fn drop(&mut self) {
        self.graph.leave(self.waiter, self.awaited);
    }
}

impl WaitCycle {
    /// The tasks of the cycle, starting with the refused waiter and ending with it again (just
    /// the waiter, twice, when a task would wait for itself).
    pub fn tasks(&self) -> impl Iterator<Item = TaskRef> + '_ {
        self.tasks.iter().map(|(task, _)| *task)
    }
}

/// "task 3 of A waits for task 5 of B, which waits for task 3 of A".
impl fmt::Display for WaitCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let describe = |(task, pool): &(TaskRef, String)| format!("task {} of {pool}", task.task);
        let [first, rest @ ..] = &self.tasks[..] else {
            return Ok(());
        };
        write!(f, "{}", describe(first))?;
        if rest.len() == 1 {
            return f.write_str(" waits for itself");
        }
        for (index, step) in rest.iter().enumerate() {
            let joint = if index == 0 {
                " waits for"
            } else {
                ", which waits for"
            };
            write!(f, "{joint} {}", describe(step))?;
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn task(pool: u64, task: u64) -> TaskRef {
        TaskRef { pool, task }
    }

    #[test]
    fn a_two_task_cycle_across_pools_is_refused_and_named() {
        let graph = WaitGraph::new();
        graph.set_name(1, "'Loader'");
        graph.set_name(2, "'Mesher'");
        let (a, b) = (task(1, 3), task(2, 5));
        let edge = graph.enter(a, b).unwrap();
        let cycle = graph.enter(b, a).unwrap_err();
        assert_eq!(cycle.tasks().collect::<Vec<_>>(), [b, a, b]);
        assert_eq!(
            cycle.to_string(),
            "task 5 of 'Mesher' waits for task 3 of 'Loader', which waits for task 5 of 'Mesher'"
        );
        assert_eq!(graph.waits(), 1, "the refused wait left no edge");
        drop(edge);
        assert_eq!(graph.waits(), 0);
        let _edge = graph
            .enter(b, a)
            .expect("once A stopped waiting, B may wait for it");
    }

    #[test]
    fn a_longer_cycle_is_found_through_every_pool_and_a_chain_is_not_a_cycle() {
        let graph = WaitGraph::new();
        let (a, b, c, d) = (task(1, 1), task(2, 1), task(3, 1), task(1, 2));
        let _ab = graph.enter(a, b).unwrap();
        let _bc = graph.enter(b, c).unwrap();
        let _cd = graph.enter(c, d).expect("a chain is not a cycle");
        let cycle = graph.enter(d, a).unwrap_err();
        assert_eq!(cycle.tasks().collect::<Vec<_>>(), [d, a, b, c, d]);
        assert_eq!(
            cycle.to_string(),
            "task 2 of pool 1 waits for task 1 of pool 1, which waits for task 1 of pool 2, \
             which waits for task 1 of pool 3, which waits for task 2 of pool 1"
        );
    }

    #[test]
    fn waiting_for_itself_is_a_cycle() {
        let graph = WaitGraph::new();
        let a = task(4, 9);
        let cycle = graph.enter(a, a).unwrap_err();
        assert_eq!(cycle.to_string(), "task 9 of pool 4 waits for itself");
    }

    #[test]
    fn the_parts_of_a_group_each_wait_and_each_edge_leaves_on_its_own() {
        let graph = WaitGraph::new();
        let (group, x, y) = (task(1, 1), task(1, 2), task(1, 3));
        let to_x = graph.enter(group, x).unwrap();
        let to_y = graph.enter(group, y).unwrap();
        assert!(
            graph.enter(y, group).is_err(),
            "y's waiter waits through the group"
        );
        drop(to_y);
        assert!(
            graph.enter(y, group).is_ok(),
            "no part of the group waits for y now"
        );
        assert!(graph.enter(x, group).is_err());
        drop(to_x);
        assert_eq!(graph.waits(), 0);
    }
}
