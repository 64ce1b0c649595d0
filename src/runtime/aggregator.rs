use kameo::error::Infallible;
use kameo::prelude::*;

use crate::error::Error;
use crate::model::Evidence;
use crate::share::{Aggregator, Dirichlet, Family, OthersUpdate, Recovery, ShareMessage, Traffic};

/// The actor that owns the global estimate.
pub struct AggregatorActor<F: Family = Dirichlet> {
    aggregator: Aggregator<F>,
}

impl<F: Family> Actor for AggregatorActor<F> {
    type Args = Aggregator<F>;
    type Error = Infallible;

    async fn on_start(aggregator: Aggregator<F>, _me: ActorRef<Self>) -> Result<Self, Self::Error> {
        Ok(Self { aggregator })
    }
}

/// Decay every contribution, fold share messages in order, then answer
/// and snapshot as asked.
pub struct Fold {
    /// In learner-id order.
    pub shares: Vec<ShareMessage>,
    /// Multiply every contribution by this first.
    pub decay: f64,
    /// Answer every learner after folding.
    pub answer: bool,
    /// Return a copy of the global counts.
    pub snapshot: bool,
}

/// What a [`Fold`] produced.
#[derive(Reply)]
pub struct Folded {
    /// In learner-id order.
    pub updates: Vec<OthersUpdate>,
    /// Traffic so far.
    pub traffic: Traffic,
    /// The global counts, if asked for.
    pub global: Option<Evidence>,
}

impl<F: Family> Message<Fold> for AggregatorActor<F> {
    type Reply = Result<Folded, Error>;

    async fn handle(&mut self, msg: Fold, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.aggregator.decay(msg.decay);
        for share in &msg.shares {
            self.aggregator.receive(share)?;
        }
        let updates = if msg.answer {
            self.aggregator.answer_all()
        } else {
            Vec::new()
        };
        Ok(Folded {
            updates,
            traffic: self.aggregator.traffic(),
            global: msg.snapshot.then(|| self.aggregator.global().clone()),
        })
    }
}

/// The aggregator's whole state, for a checkpoint.
pub struct SaveAggregator;

/// The aggregator's state.
#[derive(Reply)]
pub struct SavedAggregator<F: Family = Dirichlet>(pub Aggregator<F>);

impl<F: Family> Message<SaveAggregator> for AggregatorActor<F> {
    type Reply = SavedAggregator<F>;

    async fn handle(
        &mut self,
        _: SaveAggregator,
        _ctx: &mut Context<Self, Self::Reply>,
    ) -> SavedAggregator<F> {
        SavedAggregator(self.aggregator.clone())
    }
}

/// Rebuild records for learners that crashed.
pub struct Recover(pub Vec<u32>);

impl<F: Family> Message<Recover> for AggregatorActor<F> {
    type Reply = Result<Vec<Recovery>, Error>;

    async fn handle(&mut self, msg: Recover, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        msg.0
            .iter()
            .map(|&i| self.aggregator.recovery(i).map_err(Error::from))
            .collect()
    }
}
