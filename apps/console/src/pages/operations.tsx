export const OperationsPage = () => <h1>Operations</h1>;
