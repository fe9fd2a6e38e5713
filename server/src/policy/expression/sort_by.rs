//! cel-go's `sortBy` macro (the lists extension Kubernetes enables): `list.sortBy(e, key)` sorts
//! the list by the key each element gives, as
//! `cel.bind(@__sortBy_input__, list, @__sortBy_input__.@sortByAssociatedKeys(@__sortBy_input__.map(e, key)))`.
//! The keys are sorted by the same rules, and budget, as `sort()` (see `functions.rs`).

use cel::common::ast::{CallExpr, ComprehensionExpr, Expr, ListExpr, LiteralValue};
use cel::parser::{Macro, MacroExprHelper, ParseError};
use cel::IdedExpr;

/// The variable the list is bound to, so that it is evaluated once.
const INPUT: &str = "@__sortBy_input__";
/// The overload the macro expands to (`@` names cannot be written in CEL).
pub(super) const SORT_BY_KEYS: &str = "@sortByAssociatedKeys";

/// The macro, for [`cel::Env::add_macro`].
pub(super) fn sort_by() -> Macro {
    Macro::receiver("sortBy", 2, expand)
}

fn expand(
    helper: &mut MacroExprHelper<'_>,
    target: &mut Option<IdedExpr>,
    args: &mut Vec<IdedExpr>,
) -> Result<Option<IdedExpr>, ParseError> {
    let Some(list) = target.take() else {
        return Ok(None);
    };
    if matches!(list.expr, Expr::Literal(_) | Expr::Map(_) | Expr::Struct(_)) {
        return Err(helper.new_error(
            list.id,
            "sortBy can only be applied to a list, identifier, comprehension, call or select expression",
        ));
    }
    let (Some(key), Some(var)) = (args.pop(), args.pop()) else {
        return Ok(None);
    };
    let Expr::Ident(var) = var.expr else {
        return Err(helper.new_error(var.id, "argument must be a simple name"));
    };
    let input = |helper: &mut MacroExprHelper<'_>| helper.next_expr(Expr::Ident(INPUT.to_owned()));
    // `@__sortBy_input__.map(var, key)`, as the parser expands `map`.
    let result = "@result".to_owned();
    let accu = |helper: &mut MacroExprHelper<'_>| helper.next_expr(Expr::Ident(result.clone()));
    let element = helper.next_expr(Expr::List(ListExpr::new(vec![key])));
    let step_args = vec![accu(helper), element];
    let step = helper.next_expr(Expr::Call(CallExpr {
        func_name: "_+_".to_owned(),
        target: None,
        args: step_args,
    }));
    let keys = ComprehensionExpr {
        iter_range: input(helper),
        iter_var: var,
        iter_var2: None,
        accu_var: result.clone(),
        accu_init: helper.next_expr(Expr::List(ListExpr::new(Vec::new()))),
        loop_cond: helper.next_expr(Expr::Literal(LiteralValue::Boolean(true.into()))),
        loop_step: step,
        result: accu(helper),
    };
    let keys = helper.next_expr(Expr::Comprehension(Box::new(keys)));
    let sorted = Expr::Call(CallExpr {
        func_name: SORT_BY_KEYS.to_owned(),
        target: Some(Box::new(input(helper))),
        args: vec![keys],
    });
    // `cel.bind`: a loop over nothing whose accumulator is the list.
    let bind = ComprehensionExpr {
        iter_range: helper.next_expr(Expr::List(ListExpr::new(Vec::new()))),
        iter_var: "#unused".to_owned(),
        iter_var2: None,
        accu_var: INPUT.to_owned(),
        accu_init: list,
        loop_cond: helper.next_expr(Expr::Literal(LiteralValue::Boolean(false.into()))),
        loop_step: input(helper),
        result: helper.next_expr(sorted),
    };
    Ok(Some(helper.next_expr(Expr::Comprehension(Box::new(bind)))))
}
