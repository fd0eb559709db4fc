//! Positions and diagnostics for the configuration front end.
//!
//! Every token and AST node carries a [`Span`]: the file it was read from
//! (an index into the [`SourceMap`]) and its 1-based line and column, counted
//! in characters (a tab counts as one column, as Kamailio counts them).
//! Diagnostics render as `file:line:col: message`.

use std::fmt;

/// Index of a file in the [`SourceMap`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// Where something was written: file, line and column (both 1-based).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// The file.
    pub file: FileId,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

impl Span {
    /// A span at `line:col` of `file`.
    pub fn new(file: FileId, line: u32, col: u32) -> Self {
        Span { file, line, col }
    }

    /// The same position moved `n` columns to the right (for positions
    /// inside a single-line token, such as a pseudo-variable).
    pub fn shifted(self, n: usize) -> Self {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        Span {
            col: self.col.saturating_add(n),
            ..self
        }
    }
}

/// One source the configuration was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The name shown in diagnostics: the path as resolved, or a pseudo name
    /// such as `<command line>`.
    pub name: String,
}

/// The files a configuration was read from, in the order they were opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    /// Registers a file and returns its id.
    pub fn add(&mut self, name: impl Into<String>) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        self.files.push(SourceFile { name: name.into() });
        id
    }

    /// The name of a file (`?` for an unknown id).
    pub fn name(&self, id: FileId) -> &str {
        self.files
            .get(id.0 as usize)
            .map_or("?", |f| f.name.as_str())
    }

    /// All files, indexed by [`FileId`].
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// Renders a span as `file:line:col`.
    pub fn location(&self, span: Span) -> String {
        format!("{}:{}:{}", self.name(span.file), span.line, span.col)
    }
}

/// One error found in a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is.
    pub span: Span,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Related places, e.g. the first definition of a duplicate.
    pub notes: Vec<(Span, String)>,
}

impl Diagnostic {
    /// A diagnostic with no notes.
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            span,
            message: message.into(),
            notes: Vec::new(),
        }
    }

    /// Adds a note pointing at a related place.
    pub fn with_note(mut self, span: Span, note: impl Into<String>) -> Self {
        self.notes.push((span, note.into()));
        self
    }

    /// Renders `file:line:col: message`, notes on following lines.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = format!("{}: {}", sources.location(self.span), self.message);
        for (span, note) in &self.notes {
            out.push_str(&format!("\n{}: note: {}", sources.location(*span), note));
        }
        out
    }
}

/// One or more errors, with the file names needed to print them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics {
    /// The files the spans refer to.
    pub sources: SourceMap,
    /// The errors, in the order they were found.
    pub list: Vec<Diagnostic>,
}

impl Diagnostics {
    /// The first error (there is always at least one).
    pub fn first(&self) -> Option<&Diagnostic> {
        self.list.first()
    }

    /// Each error rendered as `file:line:col: message`.
    pub fn rendered(&self) -> Vec<String> {
        self.list.iter().map(|d| d.render(&self.sources)).collect()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str(&d.render(&self.sources))?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_col() {
        let mut sources = SourceMap::default();
        let a = sources.add("a.cfg");
        let b = sources.add("b.cfg");
        let d = Diagnostic::new(Span::new(b, 3, 7), "bad thing")
            .with_note(Span::new(a, 1, 1), "first here");
        let all = Diagnostics {
            sources,
            list: vec![d],
        };
        assert_eq!(
            all.to_string(),
            "b.cfg:3:7: bad thing\na.cfg:1:1: note: first here"
        );
        assert_eq!(all.rendered().len(), 1);
    }

    #[test]
    fn unknown_file_id_renders_question_mark() {
        let sources = SourceMap::default();
        assert_eq!(sources.location(Span::new(FileId(9), 1, 2)), "?:1:2");
    }
}
